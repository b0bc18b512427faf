import pytest

from anomalyflow.atomic import atomic_path, write_json


def test_failed_write_leaves_neither_target_nor_temp(tmp_path):
    target = tmp_path / "out" / "file.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_success_replaces_and_keeps_suffix(tmp_path):
    target = tmp_path / "stats.json"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new"
    write_json(target, {"a": 1})
    assert '"a": 1' in target.read_text()


def test_directory_mode(tmp_path):
    target = tmp_path / "model"
    with atomic_path(target, directory=True) as tmp:
        (tmp / "a.txt").write_text("x")
    assert (target / "a.txt").read_text() == "x"


# --- audit: every file the library writes goes through anomalyflow.atomic ------------------------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "anomalyflow"
# Methods that write a file given a path (torch.save, ndarray/PIL save, DataFrame.to_csv, ...).
WRITERS = {"save", "savez", "savez_compressed", "to_csv", "to_parquet", "to_json", "write_text", "write_bytes",
           "write_index", "imwrite", "imsave", "savefig", "dump"}
# Writes outside an ``atomic_path`` block that are atomic anyway, each with the reason.
ATOMIC_ANYWAY = {
    ("data/synth/writer.py", "Image.fromarray(array).save(path"): "into generate()'s atomic_path(directory=True)",
    ("patchcore.py", "self.bank.save("): "MemoryBank.save writes through atomic_path",
    ("patchcore.py", "model.save("): "PatchCore.save: MemoryBank.save and write_json",
    ("puad.py", "model.gaussian.save("): "PooledGaussian.save: save_npz",
    ("pni/model.py", "MemoryBank(getattr(self.banks, name)).save("): "MemoryBank.save writes through atomic_path",
}


def _direct_writes(path: Path) -> list[str]:
    source = path.read_text()
    found: list[str] = []

    def visit(node: ast.AST, atomic: bool) -> None:
        if isinstance(node, ast.With | ast.AsyncWith) and any(
                isinstance(item.context_expr, ast.Call) and "atomic_path" in ast.unparse(item.context_expr.func)
                for item in node.items):
            atomic = True
        if isinstance(node, ast.Call) and not atomic:
            func = node.func
            mode = [a for a in node.args[1:2]] + [k.value for k in node.keywords if k.arg == "mode"]
            writes_file = (isinstance(func, ast.Attribute) and func.attr in WRITERS) or (
                isinstance(func, ast.Name) and func.id == "open"
                and any(isinstance(m, ast.Constant) and set(str(m.value)) & set("wax") for m in mode))
            if writes_file:
                found.append(ast.get_source_segment(source, node) or ast.unparse(node))
        for child in ast.iter_child_nodes(node):
            visit(child, atomic)

    visit(ast.parse(source), path.name == "atomic.py")
    return found


def test_every_library_write_is_atomic():
    """A job killed mid-write must leave no file that looks finished: writes go through atomic_path."""
    offenders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        relative = path.relative_to(LIBRARY).as_posix()
        for call in _direct_writes(path):
            if not any(relative == file and call.startswith(prefix) for file, prefix in ATOMIC_ANYWAY):
                offenders.append(f"{relative}: {call.splitlines()[0]}")
    assert not offenders, "write these through anomalyflow.atomic (or list why they are atomic anyway):\n" + \
        "\n".join(offenders)


def test_the_audit_sees_direct_writes(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def f(x, p):\n    torch.save(x, p)\n    open(p, 'w').write('x')\n    open(p).read()\n"
                      "    with atomic_path(p) as tmp:\n        torch.save(x, tmp)\n")
    assert _direct_writes(module) == ["torch.save(x, p)", "open(p, 'w')"]
