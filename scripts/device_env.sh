# Sourced by the scripts/device_*.sh scripts on a lent GPU machine (the workplace's `device`
# tool): that machine has PyTorch but not our audio packages and cannot download, so the caller
# carries their wheels in .whl/ (and the corpus in .devdata/ravdess-16k, both ignored by git;
# scripts/device_prepare.sh makes both).
# Installs the wheels into $SITE (default /tmp/site; SITE=none, or no .whl/: use what is
# installed), puts it and the checkout on PYTHONPATH and says what GPU and torch there are.
# The runs' provenance names the commit scripts/device_prepare.sh recorded in .devdata/commit
# unless the caller named one (SER_ROS_GIT_COMMIT).
site=${SITE:-/tmp/site}
if [ "$site" != none ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl || exit 1
fi
export PYTHONPATH=$site:$PWD PYTHONUNBUFFERED=1
if [ -z "${SER_ROS_GIT_COMMIT:-}" ] && [ -f .devdata/commit ]; then
  SER_ROS_GIT_COMMIT=$(cat .devdata/commit)
fi
export SER_ROS_GIT_COMMIT
echo "commit ${SER_ROS_GIT_COMMIT:-unknown}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  || echo 'no nvidia-smi here'
python3 -c "import torch, librosa, soxr, soundfile; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
