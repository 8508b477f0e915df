#!/usr/bin/env bash
# Create (once) the peers' environment bench/.venv-peers for `make bench`.
# Reinstalls only when bench/requirements-peers.txt, the torch pin or the project's MLX
# version change (the stamp file records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=bench/.venv-peers
PY=${PYTHON:-python3}
TORCH=torch==2.13.0
REQ=bench/requirements-peers.txt
LOG=$VENV/install.log
# The peers' MLX is the project's MLX (mlxsummary is measured on the same version).
MLX_VERSION=$(.venv/bin/python -c 'import mlx.core as mx; print(mx.__version__)')
if [ "$(uname -s)" = Linux ]; then MLX="mlx[cpu]==$MLX_VERSION"; else MLX="mlx==$MLX_VERSION"; fi
WANT="$TORCH $MLX $(sha256sum "$REQ" | cut -c1-16)"

if [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$WANT" ]; then
  exit 0
fi
echo "bench: creating the peers' environment $VENV (torch, torchinfo, fvcore, calflops, mlxsummary; a few minutes)"
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
{
  # torch first and alone, so nothing after it can pull another torch build; then the
  # others with torch held at its pin.
  "${PIP[@]}" --upgrade pip &&
  "${PIP[@]}" "$TORCH" &&
  "${PIP[@]}" -r "$REQ" "$MLX" "$TORCH"
} > "$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "error: peers' install failed (log: $LOG)" >&2; exit 1; }
"$VENV/bin/python" -c 'import torch, torchinfo, fvcore, calflops, mlxsummary, matplotlib, mlx.core' \
  || { echo "error: a peer does not import in $VENV" >&2; exit 1; }
echo "$WANT" > "$VENV/.installed"
echo "bench: peers ready ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
