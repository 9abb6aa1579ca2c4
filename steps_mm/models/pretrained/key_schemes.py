"""Key maps of checkpoints: a ``KeyScheme`` is one checkpoint naming (official,
timm, mmpretrain...) of a backbone family, a list of rules ``regex -> target``
(or ``DROP``). A source key must match a rule of the chosen key scheme; nothing
is renamed by guessing. Each family keeps its key schemes beside its backbone
class (``key_schemes``); this module holds only the mechanism."""
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Union

DROP = None  # rule target: the source key is dropped on purpose (a classifier head)
W = r'(weight|bias)'
BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


@dataclass
class Rule:
    pattern: str
    #: ``re`` template (``\\1``), ``fn(match, last_stage) -> name``, or DROP
    target: Union[str, Callable, None]
    transform: Optional[Callable] = None  # value transform (channel order)


@dataclass
class KeyScheme:
    name: str
    rules: List[Rule]
    baseline: bool = False  # the baseline's own names: only layout='sequential'

    def map(self, key: str, last: int):
        """-> (rule, target name or DROP), or None when no rule matches."""
        for rule in self.rules:
            m = re.fullmatch(rule.pattern, key)
            if m:
                target = rule.target
                if callable(target):
                    target = target(m, last)
                elif target is not DROP:
                    target = m.expand(target)
                return rule, target
        return None


def final_norm(m, last):
    """Rule target: a classifier's norm after pooling is the last output norm."""
    return f'norm{last}.{m[1]}'
