#!/usr/bin/env bash
# Cron wrapper for the eo4dm routine: silent when the run did its job (exit 0) or waits for late products
# (exit 5, retried by the next run); otherwise prints what failed and the run's last lines and exits with the
# run's code, so cron mails them to MAILTO (deploy/eo4dm.cron). run_all.py redacts secrets from what it prints.
set -u
if [ $# -eq 0 ]; then
  echo "usage: eo4dm-cron.sh COMMAND [ARGS...] (e.g. .venv/bin/python run_all.py --params FILE --mode auto)" >&2
  exit 2
fi
out=$(mktemp "${TMPDIR:-/tmp}/eo4dm-cron.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
code=$?
case $code in
  0|5) ;;
  *) echo "eo4dm routine failed on $(hostname) with exit $code (run_all.py --help lists the exit codes;"
     echo "the full log is under <output>/logs/). Last lines:"
     tail -n 40 "$out" ;;
esac
exit "$code"
