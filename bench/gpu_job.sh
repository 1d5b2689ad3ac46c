# The launch / wait harness of the bench/gpu_session*.sh jobs, sourced by them (bash). A job is one script with
# three commands, because a `device` call lasts at most 10 minutes but a machine stays held between calls:
#   launch        copy the frozen code (.gpu_src, which must include this file) to $REPO, run the script's
#                 `before_launch` hook if it defines one, start `bash bench/<script> jobs` detached (setsid)
#   wait SECONDS  wait for $R/ALL_DONE (at most SECONDS), print what is logged, bring back $R and the teacher
#                 versions' metadata (no *.safetensors: $OUT returns files up to 16 MB) through $OUT
#   jobs          returns to the script, which runs its work and touches $R/ALL_DONE at the end
# The caller sets JOB_LOG (its detached log, under $R) and COUNTED (globs under $R whose lines `wait` counts).
R=${GPU_RUNS:-/root/runs}
REPO=${GPU_REPO:-/root/repo}

gpu_job() {  # SCRIPT_PATH COMMAND [SECONDS]
  local script cmd=${2:-} f
  script=$(basename "$1")
  case "$cmd" in
    launch)
      mkdir -p "$R" "$REPO"
      cp -a .gpu_src/. "$REPO/"
      if declare -F before_launch >/dev/null; then before_launch; fi
      (cd "$REPO" && setsid nohup bash "bench/$script" jobs >"$R/$JOB_LOG" 2>&1 < /dev/null &)
      sleep 2; echo launched; exit 0 ;;
    wait)
      local end=$((SECONDS + ${3:-500}))
      while [ $SECONDS -lt $end ] && [ ! -f "$R/ALL_DONE" ]; do sleep 5; done
      cd "$R" || exit 1
      for f in $COUNTED; do [ -f "$f" ] && echo "$f: $(grep -c . "$f")"; done
      tail -n 12 "$JOB_LOG"; [ -f ALL_DONE ] && echo ALL_DONE
      command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
      tar czf "$OUT/runs.tgz" --exclude='*.safetensors' -C "$R" .
      if [ -d /root/home/adapters/teacher ]; then
        tar czf "$OUT/teacher.tgz" --exclude='*.safetensors' -C /root/home/adapters teacher
      fi
      ls -la "$OUT"; exit 0 ;;
    jobs) return 0 ;;
    *) echo "usage: $script launch | wait SECONDS | jobs"; exit 2 ;;
  esac
}
