#!/usr/bin/env bash
# Distributed training with the stock mmdet/mmseg tools/train.py (picked from the
# config's default_scope), like OpenMMLab's dist_train.sh but with torchrun:
#   bash tools/dist_train.sh CONFIG NPROC [train.py args]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 PORT=29500 bash tools/dist_train.sh ...
# Without a GPU it trains on the CPU with the gloo backend (see steps_mm/engine/dist_launch.py).
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
torchrun \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$NPROC \
    --master_port=$PORT \
    -m steps_mm.engine.dist_launch train \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
