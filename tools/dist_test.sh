#!/usr/bin/env bash
# Distributed testing with the stock mmdet/mmseg tools/test.py (picked from the
# config's default_scope), like OpenMMLab's dist_test.sh but with torchrun:
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args]
# NNODES, NODE_RANK, MASTER_ADDR and PORT as in tools/dist_train.sh; gloo without a GPU.
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
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
    -m steps_mm.engine.dist_launch test \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
