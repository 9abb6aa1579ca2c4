"""The import graph of the plugin and the lab is a DAG: no module imports,
directly or through others, a module that imports it, counting imports inside
functions too (a late import that dodges a circle is still a circle).

Edges go from a module to each steps_mm or steps_lab module it names: ``import
a.b``, ``from a import b`` (to ``a.b`` when that is a module, else to ``a``'s
``__init__``), relative forms resolved. The parent packages that Python
initialises on the way to a submodule are not edges: a package's ``__init__``
importing its own submodules is how packages are built.

The plugin (``steps_mm``) never imports the lab (``steps_lab``), and the lab uses
the plugin through public names only. Inside each, the subpackages are layered: a
module never imports one of a higher layer or of another package of its own layer
(``results`` and ``research`` are siblings: measured results never depend on the
research studies)."""
import ast
import os
import os.path as osp
from typing import Dict, List, Optional, Set

import pytest

import steps_lab
import steps_mm

PACKAGES = {'steps_mm': osp.dirname(steps_mm.__file__),
            'steps_lab': osp.dirname(steps_lab.__file__)}
# the torchvision stand-in's files are data put on sys.path, never steps_mm modules
NOT_MODULES = (osp.join('torchvision_standin', 'site'),)
#: each package's subpackages and top-level modules, lowest layer first
LAYERS = {
    'steps_mm': (('models', 'engine', 'pretraining'), ('analysis',)),
    'steps_lab': (('report', 'paper'),
                  ('results', 'research', 'fidelity', 'benchmark', 'installer'),
                  ('demo',), ('compare',)),
}


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


def both_graphs() -> Dict[str, Set[str]]:
    """The graph of the plugin's and the lab's modules together."""
    modules = {}
    for name, folder in PACKAGES.items():
        modules.update(package_modules(folder, name))
    return {m: imported_modules(m, path, set(modules)) for m, path in modules.items()}


def private_imports(package_dir: str, name: str, of: str) -> List[str]:
    """``module: from of.x import _y`` for each import of a private name (or
    through a private module) of the package ``of`` in the package at
    ``package_dir``."""
    found = []
    for module, path in sorted(package_modules(package_dir, name).items()):
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and \
                    (node.module or '').split('.')[0] == of:
                names = node.module.split('.') + [a.name for a in node.names]
                if any(n.startswith('_') for n in names):
                    found.append(f'{module}: from {node.module} import '
                                 f'{", ".join(a.name for a in node.names)}')
    return found


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
                     layers) -> List[str]:
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


def test_the_plugin_and_the_lab_import_as_a_dag():
    graph = both_graphs()
    assert 'steps_mm.models.backbones.base' in graph  # the walk found both packages
    assert 'steps_mm.models.utils.embed' in graph['steps_mm.models.backbones.vit']
    assert 'steps_mm.analysis.model_index' in graph['steps_lab.results.metafile']
    cycle = find_cycle(graph)
    assert cycle is None, 'import circle: ' + ' -> '.join(cycle)


def test_the_plugin_never_imports_the_lab():
    graph = both_graphs()
    assert 'steps_lab.demo.chain' in graph['steps_lab.compare.side_by_side']
    found = [f'{m} -> {o}' for m, imported in sorted(graph.items())
             if m.startswith('steps_mm') for o in sorted(imported)
             if o.startswith('steps_lab')]
    assert found == []


def test_the_lab_uses_public_names_of_the_plugin():
    assert private_imports(PACKAGES['steps_lab'], 'steps_lab', 'steps_mm') == []


def test_a_private_import_is_found(tmp_path):
    pkg = tmp_path / 'pkg'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'a.py').write_text('from steps_mm.models import StepsStage\n'
                              'def f():\n    from steps_mm.models.steps import _hidden\n')
    (pkg / 'b.py').write_text('from steps_mm._private import thing\n')
    assert private_imports(str(pkg), 'pkg', 'steps_mm') == [
        'pkg.a: from steps_mm.models.steps import _hidden',
        'pkg.b: from steps_mm._private import thing']


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


@pytest.mark.parametrize('name', sorted(PACKAGES))
def test_no_package_imports_a_higher_layer(name):
    graph = import_graph(PACKAGES[name], name)
    assert layer_violations(graph, name, LAYERS[name]) == []


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
    layers = (('models', ), ('analysis', ), ('research', 'results'))
    assert layer_violations(graph, 'pkg', layers) == [
        'pkg.models.net -> pkg.analysis', 'pkg.results.table -> pkg.research.study']
