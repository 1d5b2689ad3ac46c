# The launch / wait harness of the bench/gpu_session*.sh jobs, sourced by them (bash). A job is one script with
# three commands, because a `device` call lasts at most 10 minutes but a machine stays held between calls:
#   launch        copy the frozen code (.gpu_src, which must include this file) to $REPO, run the script's
#                 `before_launch` hook if it defines one, start `bash bench/<script> jobs` detached (setsid)
#   wait SECONDS  wait for $R/ALL_DONE (at most SECONDS), print what is logged, bring back $R and the teacher
#                 versions' metadata (no *.safetensors: $OUT returns files up to 16 MB) through $OUT
#   jobs          returns to the script, which runs its work and touches $R/ALL_DONE at the end
# The caller sets JOB_LOG (its detached log, under $R) and COUNTED (globs under $R whose lines `wait` counts), and
# JOB_CONFIG (more of the home's config.toml for its jobs: the settings they were measured with) where defaults
# changed since.
# For `jobs` the harness exports the job environment (staged model, home, threads) and `seal` runs the CLI
# (sessions 4-6 ran without PYTORCH_CUDA_ALLOC_CONF, which job_env now sets for every job).
R=${GPU_RUNS:-/root/runs}
REPO=${GPU_REPO:-/root/repo}
# Every job before session 7 ran with a self-edit's lines mixed into the passage's batches, the default until then
SETTINGS_BEFORE_SESSION7='[absorb]\nlines = "mixed"\n\n[train]\nside_weight = 1.0'
# Every job up to session 12 ran with these teacher defaults (session 12 made rewrite at 0.3 the default); job_env
# writes them into each job's home, under what its calls --set (sessions 8-12: teacher.temperature=0.3)
TEACHER_BEFORE_SESSION12='[teacher]\nfamily = "implications"\ntemperature = 1.0'

seal() { python3 -m agent.cli "$@"; }

round_adapter() {  # RUN_FOLDER R: round R's teacher version once the round is done, else nothing
  python3 -c "
import json
try:
    d = json.load(open('$1/round-$2.json')); print(d.get('adapter', '') if d.get('status') == 'done' else '')
except (FileNotFoundError, ValueError): print('')"
}

job_env() {  # the environment of a job's processes on the GPU machine; writes the home's config.toml
  export PYTHONPATH=/tmp/site:$REPO PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
  export SEAL_AGENT_STUDENT_MODEL=/root/stage/smol SEAL_AGENT_TEACHER_MODEL=/root/stage/smol SEAL_AGENT_HOME=${GPU_HOME:-/root/home}
  mkdir -p "$SEAL_AGENT_HOME"
  printf '%b\n\n%b\n' "$TEACHER_BEFORE_SESSION12" "${JOB_CONFIG:-}" >"$SEAL_AGENT_HOME/config.toml"
}

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
    jobs) job_env; return 0 ;;
    *) echo "usage: $script launch | wait SECONDS | jobs"; exit 2 ;;
  esac
}
