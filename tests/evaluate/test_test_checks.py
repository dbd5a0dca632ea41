"""`kwsc test` before any work: models that do not go together are one line (exit 2), and the vad mode says which
VAD it uses and whether the classifier was trained for it; -v prints test_ell_model's line per file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kwsc.cli import main
from kwsc.data.dataset import Dataset
from kwsc.evaluate import session
from kwsc.evaluate.vad_tune import TUTORIAL_VAD
from kwsc.frontends.featurizer import make_featurizer
from kwsc.ir import save
from kwsc.models import resolve_model_path
from tests._graphs import gru_vad_graph

TUTORIAL = dict(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True, auto_scale=True)


def _classifier_without_vad(features: int = 80):
    """gru_vad_graph with its VAD replaced by constant-0 reset triggers (what an importer gives)."""
    from kwsc.passes import run_passes

    graph, _ = run_passes(gru_vad_graph(features=features, classes=3), ["reset_triggers", "dce"],
                          {"reset_triggers": {"source": "none"}})
    assert not graph.find("VAD")
    return graph


@pytest.fixture()
def folder(tmp_path, speech_dir):
    save(make_featurizer(**TUTORIAL), tmp_path / "featurizer.kwsc")
    save(make_featurizer(**{**TUTORIAL, "filterbank_size": 40}), tmp_path / "featurizer40.kwsc")
    save(_classifier_without_vad(), tmp_path / "classifier.kwsc")
    entries = [f"{w}/{p.name}" for w in ("yes", "no") for p in sorted((speech_dir / w).glob("*.wav"))[:2]]
    (tmp_path / "list.txt").write_text("\n".join(entries) + "\n")
    (tmp_path / "categories.txt").write_text("_silence_\nno\nyes\n")
    return tmp_path


def _test(folder, *extra, featurizer="featurizer.kwsc", classifier="classifier.kwsc"):
    return main(["test", "--featurizer", str(folder / featurizer), "--classifier", str(folder / classifier),
                 "--list_file", str(folder / "list.txt"), "--wav_files", str(folder.parent / "unused"),
                 "-o", str(folder / "results.json"), *extra])


def test_mismatches_are_one_line_before_any_audio_is_read(folder, capsys):
    # the list's wavs are not under --wav_files: a run that read audio would report them, these stop first
    assert _test(folder, featurizer="featurizer40.kwsc") == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"kwsc: error: featurizer {folder / 'featurizer40.kwsc'} gives 40 features per frame but classifier "
                   f"{folder / 'classifier.kwsc'} takes 80: they were not made for each other (check "
                   "--filterbank_size)"]
    (folder / "four.txt").write_text("a\nb\nc\nd\n")
    assert _test(folder, "--categories", str(folder / "four.txt")) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"kwsc: error: {folder / 'four.txt'} has 4 categories but classifier {folder / 'classifier.kwsc'} has 3 "
        "outputs: give the categories.txt the model was trained with")
    assert _test(folder, featurizer="classifier.kwsc", classifier="featurizer.kwsc") == 2
    assert "is a featurizer (512 values in → 80 out), not a classifier" in capsys.readouterr().err
    assert _test(folder, "--sample_rate", "8000") == 2
    assert "--sample_rate 8000: " in capsys.readouterr().err
    assert not (folder / "results.json").exists()


def test_a_dataset_made_with_another_featurizer_is_refused(folder, capsys):
    Dataset(np.zeros((2, 40 * 40), np.float32), np.array(["no", "yes"]), ["_silence_", "no", "yes"],
            [16000, 512, 40, 40, 40]).save(folder / "d40.npz")
    args = ["test", "--classifier", str(folder / "classifier.kwsc"), "--dataset", str(folder / "d40.npz"),
            "--categories", str(folder / "categories.txt"), "-o", str(folder / "results.json")]
    assert main([*args, "--featurizer", str(folder / "featurizer.kwsc")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"kwsc: error: dataset {folder / 'd40.npz'} was made with 40 features per 512 samples at 16000 Hz but "
        f"featurizer {folder / 'featurizer.kwsc'} gives 80 per 512 at 16000 Hz")
    assert main(args) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"kwsc: error: dataset {folder / 'd40.npz'} has 40 features per frame but classifier "
        f"{folder / 'classifier.kwsc'} takes 80")


def test_vad_mode_says_which_vad_and_warns_about_training(folder, speech_dir, capsys):
    args = ["--wav_files", str(speech_dir), "--categories", str(folder / "categories.txt"), "--modes", "vad", "-v"]
    assert main(["test", "--featurizer", str(folder / "featurizer.kwsc"), "--classifier",
                 str(folder / "classifier.kwsc"), "--list_file", str(folder / "list.txt"),
                 "-o", str(folder / "results.json"), *args]) == 0
    out, err = capsys.readouterr()
    assert "vad mode: add_vad with the ELL tutorial's numbers\n" in err
    assert "does not say whether it was trained for VAD resets" in err
    # -v: test_ell_model's line per file, with the running pass rate
    lines = [line for line in out.splitlines() if line.startswith(("PASSED", "FAILED"))]
    assert len(lines) == 4 and all("%" in line and ".wav" in line for line in lines)
    # a model that records vad_training 0 gets the warning; one with its own VAD is used as it is
    graph = _classifier_without_vad()
    graph.metadata["vad_training"] = "0.0"
    save(graph, folder / "untrained.kwsc")
    save(gru_vad_graph(features=80, classes=3), folder / "own_vad.kwsc")
    for name, said in (("untrained.kwsc", "was trained without --vad_training"),
                       ("own_vad.kwsc", "vad mode: the classifier's own VAD")):
        assert main(["test", "--featurizer", str(folder / "featurizer.kwsc"), "--classifier", str(folder / name),
                     "--list_file", str(folder / "list.txt"), "-o", str(folder / "results.json"), *args]) == 0
        assert said in capsys.readouterr().err
    assert json.loads((folder / "results.json").read_text())["modes"]["vad"]["passed"] >= 0
    # a model with its own VAD, not trained for it, gets the warning in the stream mode too
    graph = gru_vad_graph(features=80, classes=3)
    graph.metadata["vad_training"] = "0"
    save(graph, folder / "own_vad_untrained.kwsc")
    assert main(["test", "--featurizer", str(folder / "featurizer.kwsc"), "--classifier",
                 str(folder / "own_vad_untrained.kwsc"), "--list_file", str(folder / "list.txt"),
                 "-o", str(folder / "results.json"), *args[:4]]) == 0
    assert "was trained without --vad_training" in capsys.readouterr().err


def test_vad_runner_uses_the_tutorial_numbers_unless_told(folder):
    runner, how = session.vad_runner(folder / "classifier.kwsc", None, {}, 16000, 512)
    (vad,) = runner.graph.find("VAD")
    assert {k: vad.attrs[k] for k in TUTORIAL_VAD} == TUTORIAL_VAD and vad.attrs["frame_duration"] == 0.032
    runner, how = session.vad_runner(folder / "classifier.kwsc", None, {"tau_up": 2.0, "tau_down": 0.09}, 16000, 512)
    assert runner.graph.find("VAD")[0].attrs["tau_up"] == 2.0
    assert how == "add_vad with the ELL tutorial's numbers and --tau_up 2"


def test_ell_module_paths(tmp_path):
    project = tmp_path / "KeywordSpotter"
    project.mkdir()
    for name in ("libmodel.so", "model.h", "model.c", "model.kwsc"):
        (project / name).write_bytes(b"")
    for given in ("KeywordSpotter/model", "KeywordSpotter\\model", "KeywordSpotter"):
        ref = resolve_model_path(tmp_path / given if "\\" not in given else f"{tmp_path}/{given}")
        assert (ref.module, ref.library, ref.file) == ("model", project / "libmodel.so", project / "model.kwsc")
    (project / "libmodel.so").unlink()  # not built: the model beside it
    ref = resolve_model_path(project / "model")
    assert ref.library is None and ref.file == project / "model.kwsc" and "no host library built" in ref.describe()
    with pytest.raises(Exception, match=r"KeywordSpottermodel: no such model; did you mean .*KeywordSpotter/model\?"):
        resolve_model_path(tmp_path / "KeywordSpottermodel")  # what a shell makes of KeywordSpotter\model
