"""The package's import graph is a DAG: no module imports, directly or through
others, a module that imports it, counting imports inside functions too (a
late import that dodges a circle is still a circle).

Edges go from a module to each steps_mm module it names: ``import a.b``,
``from a import b`` (to ``a.b`` when that is a module, else to ``a``'s
``__init__``), relative forms resolved. The parent packages that Python
initialises on the way to a submodule are not edges: a package's ``__init__``
importing its own submodules is how packages are built.

The subpackages are layered besides: a module never imports one of a higher layer
or of another package of its own layer (``results`` and ``research`` are
siblings: measured results never depend on the research studies)."""
import ast
import os
import os.path as osp
from typing import Dict, List, Optional, Set

import steps_mm

PACKAGE_DIR = osp.dirname(steps_mm.__file__)
# the torchvision stand-in's files are data put on sys.path, never steps_mm modules
NOT_MODULES = (osp.join('torchvision_standin', 'site'),)
#: the subpackages, lowest layer first
LAYERS = (('models', 'engine', 'pretraining'), ('analysis',), ('research', 'results'),
          ('demo',))


def package_modules(package_dir: str, name: str,
                    skip=NOT_MODULES) -> Dict[str, str]:
    """Module name -> file of every module of the package at ``package_dir``."""
    modules = {}
    for folder, dirs, files in os.walk(package_dir):
        rel = osp.relpath(folder, package_dir)
        if any(rel.startswith(s) for s in skip) or '__pycache__' in rel:
            dirs[:] = []
            continue
        parts = [name] + ([] if rel == '.' else rel.split(os.sep))
        for file in files:
            if file.endswith('.py'):
                stem = file[:-3]
                modules['.'.join(parts if stem == '__init__' else parts + [stem])] = \
                    osp.join(folder, file)
    return modules


def imported_modules(module: str, path: str, modules: Set[str]) -> Set[str]:
    """The package's modules that ``module`` imports anywhere in its file."""
    is_package = path.endswith('__init__.py')
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, is_package, node.module, node.level)
            if base is None:
                continue
            for alias in node.names:
                target = f'{base}.{alias.name}'
                if target in modules:
                    found.add(target)
                elif base in modules:
                    found.add(base)
    found.discard(module)
    return found


def resolve(module: str, is_package: bool, name: Optional[str],
            level: int) -> Optional[str]:
    if level == 0:
        return name
    parts = module.split('.')
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[:len(anchor) - (level - 1)]
    return '.'.join(anchor + ([name] if name else []))


def import_graph(package_dir: str, name: str, **kwargs) -> Dict[str, Set[str]]:
    modules = package_modules(package_dir, name, **kwargs)
    return {m: imported_modules(m, path, set(modules)) for m, path in modules.items()}


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import circle as a path ``[a, b, ..., a]``, or None."""
    state = {}  # module -> 'open' (on the current path) or 'done'

    def visit(path):
        node = path[-1]
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':  # back to a module on the path
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(path + [nxt])
                if cycle:
                    return cycle
        state[node] = 'done'
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit([start])
            if cycle:
                return cycle
    return None


def layer_violations(graph: Dict[str, Set[str]], name: str,
                     layers=LAYERS) -> List[str]:
    """``a -> b`` for each import of a module ``b`` of a higher layer than
    ``a``'s, or of another package of the same layer."""
    rank = {f'{name}.{package}': i for i, group in enumerate(layers)
            for package in group}

    def package(module):
        return '.'.join(module.split('.')[:2])

    found = []
    for module, imported in sorted(graph.items()):
        mine = package(module)
        for other in sorted(imported):
            theirs = package(other)
            if mine in rank and theirs in rank and theirs != mine and \
                    rank[theirs] >= rank[mine]:
                found.append(f'{module} -> {other}')
    return found


def test_steps_mm_imports_form_a_dag():
    graph = import_graph(PACKAGE_DIR, 'steps_mm')
    assert 'steps_mm.models.backbones.base' in graph  # the walk found the package
    assert 'steps_mm.models.utils.embed' in graph['steps_mm.models.backbones.vit']
    cycle = find_cycle(graph)
    assert cycle is None, 'import circle: ' + ' -> '.join(cycle)


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / 'pkg'
    (pkg / 'sub').mkdir(parents=True)
    (pkg / '__init__.py').write_text('from . import a\n')
    (pkg / 'a.py').write_text('from .sub.b import thing\n')
    (pkg / 'sub' / '__init__.py').write_text('')
    (pkg / 'sub' / 'b.py').write_text('def thing():\n    from ..a import other\n')
    graph = import_graph(str(pkg), 'pkg', skip=())
    assert graph['pkg.sub.b'] == {'pkg.a'}
    assert find_cycle(graph) == ['pkg.a', 'pkg.sub.b', 'pkg.a']
    (pkg / 'sub' / 'b.py').write_text('def thing():\n    import os\n')
    assert find_cycle(import_graph(str(pkg), 'pkg', skip=())) is None


def test_no_package_imports_a_higher_layer():
    graph = import_graph(PACKAGE_DIR, 'steps_mm')
    assert 'steps_mm.analysis.model_index' in graph['steps_mm.results.metafile']
    assert layer_violations(graph, 'steps_mm') == []


def test_an_import_of_a_higher_layer_or_a_sibling_is_found(tmp_path):
    pkg = tmp_path / 'pkg'
    for sub in ('models', 'analysis', 'research', 'results'):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / '__init__.py').write_text('')
    (pkg / '__init__.py').write_text('')
    (pkg / 'research' / 'study.py').write_text('from ..analysis import thing\n')
    (pkg / 'results' / 'table.py').write_text(
        'def f():\n    from ..research import study\n')
    (pkg / 'models' / 'net.py').write_text('import pkg.analysis\n')
    graph = import_graph(str(pkg), 'pkg', skip=())
    assert layer_violations(graph, 'pkg') == ['pkg.models.net -> pkg.analysis',
                                              'pkg.results.table -> pkg.research.study']
