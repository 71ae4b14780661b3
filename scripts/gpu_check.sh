#!/usr/bin/env bash
# Issue 6 on a GPU host, in one go (about 4-6 minutes on an H100; < 10 minutes budgeted):
#
#   scripts/gpu_check.sh OUT_DIR [--quick] [--trtexec] [--compile] [--weights W] [--bn-mode MODE]
#
#   1. records the machine (nvidia-smi, torch/CUDA/cuDNN)              -> OUT_DIR/env.json, nvidia-smi.txt
#   2. pytest -m gpu: CUDA fp32 vs ONNX Runtime, every variant/dtype vs fp32, per-dtype batch invariance,
#      finite outputs, CUDA graphs                                      -> gpu-tests.log/.xml, gate/gate-report.json
#   3. fp16 sweep eager -> channels-last -> folded -> tuned, bs 1,4,8,16,32, and the targets
#      (tuned >= 2.0x eager at bs1, >= 1.2x at bs16, never slower; they apply on an H100)
#                                                                       -> sweep-fp16.json/.txt
#   4. fp32 / TF32 / bf16 sweep, eager and tuned (the README's table)   -> sweep-dtypes.json/.txt
#   5. the streamed accuracy pass over 1,072 synthetic prepared tiles, fp32 and fp16, through the gate's
#      run_inference and the overlapped stream (target < 30 s)          -> accuracy-pass.json
#   6. the CPU reference backend decided by benchmark on this host      -> cpu-backend.json
#   --trtexec: the port's T4 trtexec command at bs1 and bs16 when trtexec is on PATH (adds minutes per engine);
#   --compile: torch.compile(max-autotune) rows at bs1 and bs16 (adds ~2 x 100 s of compilation).
#
# Everything lands in OUT_DIR; gpu-check.json holds the verdict per step and the console log is kept as
# gpu-check.log. Exit status: 0 all passed, 1 a test/target/check failed, 2 no usable GPU or bad usage.
set -uo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OUT="$1"
shift
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"

PY="${PYTHON:-python}"
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname)"
    if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi; else echo "nvidia-smi: not on PATH"; fi
} > "$OUT/nvidia-smi.txt" 2>&1

if ! "$PY" - <<'EOF'
import sys
try:
    import torch
except ImportError:
    sys.exit("torch is not installed: python -m pip install -e '.[test]' with a CUDA build of torch 2.13/2.14")
if not torch.cuda.is_available():
    sys.exit(f"CUDA not available: torch.cuda.is_available() is False (torch {torch.__version__}, "
             f"built for CUDA {torch.version.cuda}); run on a host with an NVIDIA GPU and a CUDA build of torch")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"{torch.cuda.get_device_name()}")
EOF
then
    echo "gpu_check: no usable GPU; nothing measured (see above). $OUT/nvidia-smi.txt has the driver's view." >&2
    exit 2
fi

"$PY" -m vnet_accept gpu-check --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu-check.log"
status=${PIPESTATUS[0]}
echo "gpu_check: exit status $status; results in $OUT (gpu-check.json, gpu-check.txt, sweep-*.txt)"
exit "$status"
