#!/usr/bin/env python3
"""scripts/matrix/report.py — turns scripts/compat-matrix's results.tsv (and
optionally scripts/bench-compare --tsv output) into results.md, ratio.png and
bench.png.

    report.py RESULTS.TSV OUTDIR [--bench-tsv FILE] [--elapsed S] [--cases N] [--fast]

The markdown table has a header saying when, on what machine (CPU model,
CPU count, kernel, glibc) and whether the CPU offers FSGSBASE (without it
every switch between Gs is an arch_prctl system call). Ratios are normalised
so that above 1 means the shim was faster. The charts need matplotlib
(Debian: python3-matplotlib); without it only the markdown is written.
"""
import argparse
import datetime
import os
import platform
import sys


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip('\n').split('\t') for l in f if l.strip()]
    head, rows = lines[0], lines[1:]
    return [dict(zip(head, r + [''] * (len(head) - len(r)))) for r in rows]


def machine():
    model, cpus, fsgs = '?', os.cpu_count(), 0
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name') and model == '?':
                    model = line.split(':', 1)[1].strip()
                if line.startswith('flags') and 'fsgsbase' in line.split():
                    fsgs += 1
    except OSError:
        pass
    glibc = ' '.join(platform.libc_ver())
    return model, cpus, platform.release(), glibc, fsgs


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def fmt(s):
    v = num(s)
    if v is None:
        return s or '-'
    if v >= 1000:
        return f'{v:,.0f}'
    if v >= 100:
        return f'{v:.0f}'
    return f'{v:.3g}'


def markdown(rows, args, out):
    model, cpus, kernel, glibc, fsgs = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    statuses = ['PASS', 'FAIL', 'SKIP'] + sorted({r['status'] for r in rows} - {'PASS', 'FAIL', 'SKIP'})
    n = {s: sum(1 for r in rows if r['status'] == s) for s in statuses}
    lines = [
        f'# Compatibility matrix{" (fast subset)" if args.fast else ""}',
        '',
        f'{now}; {model}, {cpus} CPUs; kernel {kernel}; {glibc}; '
        f'FSGSBASE: {"yes" if fsgs else "no (every switch between Gs is an arch_prctl system call)"} '
        f'(`grep -cw fsgsbase /proc/cpuinfo` = {fsgs}).',
        '',
        f'{len(rows)} cases: ' + ', '.join(f'{n[s]} {s}' for s in statuses if n[s] or s in ('PASS', 'FAIL'))
        + (f'; the run took {args.elapsed} s' if args.elapsed else '') + '. '
        'Each case runs natively, under the shim with the default number of Ps and with '
        '`MNP_PROCS=1`; PASS means exit status and output identical in all three. '
        'Ratio: shim / native, normalised so that above 1 means the shim was faster '
        '(for a time: native / shim). Kernel threads: peak `Threads:` of the program under '
        'test (native / shim / shim at 1 P).',
        '',
        '| case | kind | what | status | native | shim | shim 1 P | unit | ratio | ratio 1 P | kernel threads | notes |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        notes = (r.get('notes', '') or '').replace('|', '\\|')
        if notes == '-':
            notes = ''
        if len(notes) > 160:
            notes = notes[:157] + '...'
        kt = '/'.join(r.get(k, '-') or '-' for k in ('kthreads_native', 'kthreads_shim', 'kthreads_shim_1p'))
        lines.append('| ' + ' | '.join([
            f'`{r["case"]}`', r['kind'], r.get('what', '').replace('|', '\\|'), f'**{r["status"]}**',
            fmt(r['native']), fmt(r['shim']), fmt(r['shim_1p']), r['unit'], fmt(r['ratio']),
            fmt(r['ratio_1p']), kt, notes]) + ' |')
    lines.append('')
    if args.note:
        lines[4:4] = [f'**Note:** {args.note}', '']
    with open(os.path.join(out, 'results.md'), 'w') as f:
        f.write('\n'.join(lines))
    return model, cpus, fsgs, now


def charts(rows, args, out, model, cpus, fsgs, now):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('report: matplotlib missing (python3-matplotlib): no charts', file=sys.stderr)
        return
    sub = f'{now}, {cpus} CPUs, FSGSBASE {"yes" if fsgs else "no"}'
    pts = [(r['case'], num(r['ratio']), num(r['ratio_1p'])) for r in rows if r['status'] == 'PASS']
    pts = [p for p in pts if p[1] is not None or p[2] is not None]
    if pts:
        fig, ax = plt.subplots(figsize=(max(8, 0.42 * len(pts) + 2), 5))
        xs = range(len(pts))
        w = 0.4
        ax.bar([x - w / 2 for x in xs], [p[1] or 0 for p in pts], w, label='shim, default Ps', color='#3b7dd8')
        ax.bar([x + w / 2 for x in xs], [p[2] or 0 for p in pts], w, label='shim, MNP_PROCS=1', color='#f0a030')
        ax.axhline(1.0, color='black', linewidth=1)
        ax.set_yscale('log')
        ax.set_xticks(list(xs))
        ax.set_xticklabels([p[0] for p in pts], rotation=60, ha='right', fontsize=8)
        ax.set_ylabel('shim / native (above 1: shim faster)')
        ax.set_title(f'Real programs under mnpthread: throughput ratio\n{sub}', fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, 'ratio.png'), dpi=100)
        plt.close(fig)
    if args.bench_tsv and os.path.exists(args.bench_tsv):
        brows = read_tsv(args.bench_tsv)
        pts = [(r['benchmark'], num(r['speedup'])) for r in brows if num(r.get('speedup', '')) ]
        if pts:
            fig, ax = plt.subplots(figsize=(8, max(4, 0.28 * len(pts) + 1.5)))
            ys = range(len(pts))
            ax.barh(list(ys), [p[1] for p in pts],
                    color=['#3b7dd8' if p[1] >= 1 else '#d84b3b' for p in pts])
            ax.axvline(1.0, color='black', linewidth=1)
            ax.set_xscale('log')
            ax.set_yticks(list(ys))
            ax.set_yticklabels([p[0] for p in pts], fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel('speed-up, native time / shim time (log; above 1: shim faster)')
            ax.set_title(f'scripts/bench-compare micro-benchmarks\n{sub}', fontsize=10)
            fig.tight_layout()
            fig.savefig(os.path.join(out, 'bench.png'), dpi=100)
            plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('tsv')
    ap.add_argument('out')
    ap.add_argument('--bench-tsv')
    ap.add_argument('--elapsed')
    ap.add_argument('--fast', action='store_true')
    ap.add_argument('--note', help='a sentence printed under the header')
    args = ap.parse_args()
    order = ['compress', 'build', 'runtime', 'server', 'database', 'numeric', 'media', 'tools']
    rows = sorted(read_tsv(args.tsv),
                  key=lambda r: (order.index(r['kind']) if r['kind'] in order else len(order), r['case']))
    model, cpus, fsgs, now = markdown(rows, args, args.out)
    charts(rows, args, args.out, model, cpus, fsgs, now)


if __name__ == '__main__':
    main()
