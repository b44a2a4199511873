"""``hsilib claims``: the README's example as written, any store, every format."""

import io
import itertools
import json
import re
import shlex
from pathlib import Path

import pandas as pd

from hsilib.claims import CHAPTERS, CLAIMS, VERDICTS
from hsilib.cli import main
from hsilib.experiments import ResultStore

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
CSV_COLUMNS = {"claim", "chapter", "scope", "verdict", "reason", "paper_verdict", "ours", "paper"}


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = (line.split(" # ")[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line.startswith("hsilib claims")]


def run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_readme_example_lists_every_claim_judged_on_the_papers_tables(capsys):
    [command] = [c for c in readme_commands() if "--paper" in c]
    code, out, err = run(shlex.split(command)[1:], capsys)
    assert code == 0, err
    ledger = pd.read_csv(io.StringIO(out), keep_default_na=False)
    assert CSV_COLUMNS <= set(ledger.columns)
    assert len(ledger) == len(CLAIMS) >= 22
    assert ledger["verdict"].isin(VERDICTS).all() and ledger["paper_verdict"].isin(VERDICTS).all()
    assert (ledger["verdict"] == ledger["paper_verdict"]).all()  # --paper: the paper is what is judged
    assert set(ledger["chapter"]) == set(CHAPTERS)
    assert re.search(rf"\b{len(CLAIMS)} claims\b", README), "the README's count of claims is stale"


def stored(root: Path, **models: float) -> ResultStore:
    """A store of baseline runs, each model's top-1 (a fraction) plus noise,
    on both scenes and splits with three seeds."""
    store = ResultStore(root)
    noise = iter(0.002 * ((i * 7919) % 11 - 5) for i in itertools.count())
    for (model, top1), scene, split, seed in itertools.product(
            models.items(), ("indian_pines", "pavia_university"), ("disjoint", "random"), (0, 1, 2)):
        config = {"scene": scene, "split": split, "model": model, "seed": seed, "epochs": 20, "widths": None,
                  "pca_fit": "train", "train_fraction": None}
        key = f"{model}{scene}{split}{seed}"
        store.put({"key": key, "kind": "train", "config": config, "test_predictions": [],
                   "metrics": {m: top1 + next(noise) for m in ("top1", "top5", "oa", "aa", "kappa")},
                   "measure": {"params": 1000, "memory_mb_serialized": 1.0, "latency_ms_median": 1.0,
                               "throughput_per_s": 100.0},
                   "convergence": {"converged": True, "max_epochs": 20}, "data_source": "real", "wall_s": 1.0})
    return store


def test_a_store_is_judged_beside_the_paper(tmp_path, capsys):
    stored(tmp_path, cnn2d=0.90, cnn2d_c1=0.70)
    code, out, err = run(["claims", "--store", str(tmp_path), "--format", "json"], capsys)
    assert code == 0, err
    ledger = pd.DataFrame(json.loads(out)).set_index("name")
    assert ledger.loc["c1_much_worse", "verdict"] == "holds"
    assert "4 setting(s) × 3 seed(s)" in ledger.loc["c1_much_worse", "ours"]
    assert ledger.loc["c1_much_worse", "paper_verdict"] == "indicative"  # one run a cell
    assert ledger.loc["prune_beats_scratch", "verdict"] == "not testable here"
    code, out, err = run(["claims", "--store", str(tmp_path)], capsys)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["claim", "chapter", "verdict"]


def test_a_missing_store_is_a_clear_error(tmp_path, capsys):
    code, out, err = run(["claims", "--store", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and "result store" in err and "does not exist" in err
