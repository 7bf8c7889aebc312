"""`minituner compare`, the main job, with a tiny step count: structure, files, and that every loss fell."""

from minituner.cli import main
from minituner.compare import methods


def test_compare_writes_the_table_and_figures_and_every_loss_falls(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--steps", "15", "--out", str(out)]) == 0
    table = (out / "table.md").read_text().splitlines()
    header = [c.strip() for c in table[2].strip("|").split("|")]
    for col in ("method", "trainable params", "trainable %", "optimizer state bytes", "train loss", "test loss",
                "test acc", "train s", "step memory bytes", "saved bytes"):
        assert col in header
    body = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in table[4:]]
    assert [r["method"] for r in body] == [m.name for m in methods()]
    for r in body:
        assert float(r["train loss"]) < float(r["train loss before"]), r["method"]
    pct = {r["method"]: float(r["trainable %"]) for r in body}
    assert pct["full (全量微调)"] == 100 and pct["LoRA"] < 3
    assert (out / "losses.png").stat().st_size > 1000 and (out / "tradeoff.png").stat().st_size > 1000
    assert "test acc" in capsys.readouterr().out
