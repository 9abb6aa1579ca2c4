"""Measuring models: parameters, blocks and layers by the StepsNet paper's
conventions, FLOPs (multiply-accumulates) by the papers' protocol, and the
shipped configs' models built as the Runner builds them."""
from .configs import build_from_config, shipped_configs
from .counts import count_blocks_and_layers, count_params
from .flops import (UncountedOperators, analyze, count, count_config, count_flops,
                    table1_classifier)
from .markdown import markdown_table

__all__ = ['UncountedOperators', 'analyze', 'build_from_config', 'count',
           'count_blocks_and_layers', 'count_config', 'count_flops', 'count_params',
           'markdown_table',
           'shipped_configs', 'table1_classifier']
