"""The bad-input corpus (tests/bad_inputs) through the engine: its image reader, its checkpoint and classifier
loaders, and the command line (``info``, ``evaluate-classifier``), which answer with the reason and exit
status 2, never a traceback, and never run code from a file."""

from __future__ import annotations

import pickle
import re

import pytest

from explain_engine.checkpoints import CheckpointError, load_generator
from explain_engine.classifiers import ClassifierError, load_classifier
from explain_engine.cli import main
from explain_engine.images import ImageReadError, read_radiograph
from tests.bad_inputs import corpus
from tests.bad_inputs.corpus import CASE_FILES, CHECKPOINT_FILES, CaseFile, CheckpointFile, Models


@pytest.fixture(scope="module")
def good_models(tmp_path_factory):
    from tests.helpers.studies import tiny_lab_model_files

    return tiny_lab_model_files(tmp_path_factory.mktemp("good-models"))


@pytest.fixture
def models(good_models, tmp_path) -> Models:
    return Models(generator=good_models[0], classifier=good_models[1], marker=tmp_path / "code-was-run")


@pytest.mark.parametrize("bad", [c for c in CASE_FILES if c.engine_refuses], ids=str)
def test_the_reader_refuses_each_bad_image_naming_the_file(tmp_path, bad: CaseFile):
    path = tmp_path / bad.name
    path.write_bytes(bad.make())

    with pytest.raises(ImageReadError) as raised:
        read_radiograph(path)

    message = str(raised.value)
    assert message.startswith(f"{path}: ") and len(message) > len(str(path)) + 10
    assert "<_io." not in message


def test_the_reader_refuses_a_header_bomb_before_decoding_it(monkeypatch):
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)

    with pytest.raises(ImageReadError, match="12000 x 12000"):
        read_radiograph(corpus.header_bomb_png(12000, 12000), filename="bomb.png")


def test_each_code_pickle_of_the_corpus_runs_its_command_when_unpickled_naively(tmp_path):
    """The control: every payload is live, so the loaders' refusals below are meaningful."""
    for opcode, payload in corpus.code_pickles(f"touch {tmp_path}/ran").items():
        (tmp_path / "ran").unlink(missing_ok=True)
        pickle.loads(payload)  # noqa: S301 - the point of the control
        assert (tmp_path / "ran").exists(), opcode


@pytest.mark.parametrize("bad", [c for c in CHECKPOINT_FILES if c.generator], ids=str)
def test_the_generator_loader_refuses_each_bad_checkpoint(tmp_path, models, bad: CheckpointFile):
    path = tmp_path / bad.name
    path.write_bytes(bad.make(models))

    with pytest.raises(CheckpointError) as raised:
        load_generator(path)

    assert re.search(bad.generator or "", str(raised.value)), str(raised.value)
    assert not models.marker.exists()


@pytest.mark.parametrize("bad", [c for c in CHECKPOINT_FILES if c.classifier], ids=str)
def test_the_classifier_loader_refuses_each_bad_file(tmp_path, models, bad: CheckpointFile):
    path = tmp_path / bad.name
    path.write_bytes(bad.make(models))

    with pytest.raises(ClassifierError) as raised:
        load_classifier(path)

    assert re.search(bad.classifier or "", str(raised.value)), str(raised.value)
    assert not models.marker.exists()


def test_the_command_line_reports_each_bad_checkpoint_without_a_traceback(tmp_path, models, capsys):
    for bad in CHECKPOINT_FILES:
        path = tmp_path / bad.name
        path.write_bytes(bad.make(models))
        runs = []
        if bad.generator:
            runs.append((["info", str(path)], bad.generator))
        if bad.classifier:
            runs.append(
                (
                    ["evaluate-classifier", "--classifier", str(path), "--phantoms", "2", "--device", "cpu"],
                    bad.classifier,
                )
            )
        for argv, reason in runs:
            code = main(argv)

            err = capsys.readouterr().err
            assert code == 2, (bad.name, argv[0])
            assert err.startswith("error: ") and re.search(reason, err), (bad.name, argv[0], err)
            assert "Traceback" not in err
            assert not models.marker.exists(), bad.name


def test_evaluate_classifier_names_a_bad_case_image_and_exits_2(tmp_path, capsys):
    refused = [c for c in CASE_FILES if c.engine_refuses]
    for bad in refused:
        folder = tmp_path / bad.name.replace(".", "-")
        folder.mkdir()
        (folder / bad.name).write_bytes(bad.make())
        (folder / "labels.csv").write_text(f"filename,label,split\n{bad.name},1,test\n")

        code = main(
            ["evaluate-classifier", "--classifier", "demo", "--cases", str(folder), "--device", "cpu"]
        )

        err = capsys.readouterr().err
        assert code == 2 and f"error: {folder / bad.name}: " in err, (bad.name, err)
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("filename,label\ncafé.png,1\n".encode("latin-1"), "not UTF-8"),
        (b"file,lbl\na.png,1\n", "lacks column"),
        (b"filename,label\na.png,maybe\n", "label must be 0 or 1"),
        (b"filename,label\nmissing.png,1\n", "not found"),
    ],
)
def test_evaluate_classifier_refuses_a_bad_labels_csv(tmp_path, capsys, content, message):
    (tmp_path / "labels.csv").write_bytes(content)

    code = main(["evaluate-classifier", "--classifier", "demo", "--cases", str(tmp_path), "--device", "cpu"])

    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
