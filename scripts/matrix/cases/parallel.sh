#!/usr/bin/env bash
# GNU parallel -j4 -k: 40 jobs (each a shell that computes a checksum),
# output kept in input order; parallel (perl) and every job carry the shim.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=tools packages=(parallel) commands=(parallel) MX_TREE=1
what='GNU parallel -j4 -k, 40 jobs'
workload() {
  mx_exec parallel --will-cite -k -j4 'printf "job %s " {}; seq 1 $(({} * 2000)) | sha256sum' ::: $(seq 1 40)
}
mx_main
