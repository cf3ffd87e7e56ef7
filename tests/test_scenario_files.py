"""Both scenario kinds are read by the same rules (pnyx.envs.scenario_files), and the authors'
prompt folder stays inside itself."""

import os
from pathlib import Path

import pytest

from pnyx.envs import goal_guarding_v0 as gg
from pnyx.envs import peer_preservation_v0 as pp
from pnyx.envs.scenario_files import MAX_FILE_BYTES
from pnyx.errors import PnyxError

#: Each kind: its module and the shipped scenario the tests extend.
KINDS = {"goal_guarding": (gg, "default"), "peer_preservation": (pp, "shutdown_config")}
#: Entries of a folder that are not plain text: a symlink to a path, a FIFO, a sparse file too large.
LINK, FIFO, HUGE = "link", "fifo", "huge"


def _make(folder: Path, files: dict) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, tuple) and text[0] == LINK:
            path.symlink_to(text[1])
        elif text == FIFO:
            os.mkfifo(path)
        elif text == HUGE:
            with open(path, "wb") as f:
                f.truncate(MAX_FILE_BYTES + 1)
        else:
            path.write_text(text)


def _load_error(load, path) -> str:
    with pytest.raises(PnyxError) as error:
        load(path)
    return str(error.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_scenario_extends_its_base_through_nested_files(tmp_path, kind):
    module, shipped = KINDS[kind]
    _make(tmp_path, {"top.yaml": "base: parts/mid.yaml\n",
                     "parts/mid.yaml": f"base: {shipped}\ndescription: mid\nname: mid\n"})
    expected = module.load_scenario(shipped).model_copy(update={"name": "top", "description": "mid"})
    assert module.load_scenario(tmp_path / "top.yaml") == expected


#: Scenario folders ``sc`` (``out.yaml`` beside it) and the exact error of loading ``sc/s.yaml``;
#: ``{sc}`` is the folder's real path, ``{shipped}`` the kind's shipped scenario, ``{names}`` all of them.
REFUSED = {
    "a base too large": ({"s.yaml": "base: big.yaml\n", "big.yaml": HUGE},
                         "scenario '{sc}/big.yaml' is larger than 64 MiB"),
    "a base up and out": ({"s.yaml": "base: ../out.yaml\n"},
                          "scenario '{sc}/s.yaml': field 'base': '../out.yaml' leads outside the scenario's folder '{sc}'"),
    "a base symlinked out": ({"s.yaml": "base: link.yaml\n", "link.yaml": (LINK, "../out.yaml")},
                             "scenario '{sc}/s.yaml': field 'base': 'link.yaml' leads outside the scenario's folder '{sc}'"),
    "an absolute base": ({"s.yaml": "base: /etc/out.yaml\n"},
                         "scenario '{sc}/s.yaml': field 'base': '/etc/out.yaml' must be a path relative to the "
                         "scenario's folder"),
    "a FIFO base": ({"s.yaml": "base: pipe.yaml\n", "pipe.yaml": FIFO}, "scenario '{sc}/pipe.yaml' is not a regular file"),
    "a missing base": ({"s.yaml": "base: gone.yaml\n"}, "scenario '{sc}/gone.yaml' does not exist"),
    "an unknown base": ({"s.yaml": "base: nowhere\n"},
                        "scenario '{sc}/s.yaml': field 'base': unknown scenario 'nowhere' (shipped: {names}; or a .yaml path)"),
    "a base cycle": ({"s.yaml": "base: sub/b.yaml\n", "sub/b.yaml": "base: ../s.yaml\n"},
                     "scenario '{sc}/s.yaml' inherits from itself through 'base'"),
    "a field set by a base": ({"s.yaml": "base: b.yaml\n", "b.yaml": "base: {shipped}\ndescription: [1]\n"},
                              "scenario '{sc}/b.yaml': field 'description': Input should be a valid string"),
    "an unknown field": ({"s.yaml": "base: {shipped}\ncolour: red\n"},
                         "scenario '{sc}/s.yaml': field 'colour': Extra inputs are not permitted"),
    "not YAML": ({"s.yaml": "system: [unclosed\n"},
                 "scenario '{sc}/s.yaml' is not valid YAML (line 2: while parsing a flow sequence, expected ',' or "
                 "']', but got '<stream end>')"),
    "not a mapping": ({"s.yaml": "- a\n"}, "scenario '{sc}/s.yaml' must be a mapping of fields"),
}


@pytest.mark.parametrize("case", REFUSED)
@pytest.mark.parametrize("kind", KINDS)
def test_both_kinds_refuse_the_same_files_with_the_same_one_line_error(tmp_path, kind, case):
    module, shipped = KINDS[kind]
    files, message = REFUSED[case]
    (tmp_path / "out.yaml").write_text(f"base: {shipped}\n")
    sc = (tmp_path / "sc").resolve()
    _make(sc, {name: text.format(shipped=shipped) if isinstance(text, str) else text for name, text in files.items()})
    expected = message.format(sc=sc, shipped=shipped, names=", ".join(module.scenario_names()))
    assert _load_error(module.load_scenario, sc / "s.yaml") == expected


def test_the_user_named_file_itself_must_be_a_regular_file(tmp_path):
    folder = tmp_path.resolve()
    _make(folder, {"pipe.yaml": FIFO, "big.yaml": HUGE})
    for module, _ in KINDS.values():
        assert _load_error(module.load_scenario, folder / "pipe.yaml") == f"scenario '{folder}/pipe.yaml' is not a regular file"
        assert _load_error(module.load_scenario, folder / "big.yaml") == f"scenario '{folder}/big.yaml' is larger than 64 MiB"


# --- the authors' prompt folder ---------------------------------------------------------------


def test_authors_prompt_folder_follows_symlinks_that_stay_inside(tmp_path):
    folder = tmp_path / "prompts"
    _make(folder, {"texts/system.txt": "S.", "texts/free.txt": "F", "system_prompt.txt": (LINK, "texts/system.txt"),
                   "cues/free.txt": (LINK, "../texts/free.txt"), "cues/pro.txt": "P", "cues/enterprise.txt": "E"})
    s = gg.load_scenario(folder)
    assert s.system == "S." and [(c.name, c.cue) for c in s.contexts] == [("free", "F"), ("pro", "P"), ("enterprise", "E")]


#: Entries of a prompt folder holding ``system_prompt.txt``, and the exact error;
#: ``{p}`` is the folder's real path, ``{out}`` a folder beside it holding ``secret.txt``.
PROMPTS_REFUSED = {
    "system prompt symlinked out": ({"system_prompt.txt": (LINK, "{out}/secret.txt")},
                                    "scenario '{p}': 'system_prompt.txt' leads outside the scenario's folder '{p}'"),
    "cues folder symlinked out": ({"cues": (LINK, "{out}")},
                                  "scenario '{p}': 'cues' leads outside the scenario's folder '{p}'"),
    "a cue symlinked out": ({"cues/free.txt": (LINK, "{out}/secret.txt"), "cues/pro.txt": "P"},
                            "scenario '{p}': 'free.txt' leads outside the scenario's folder '{p}'"),
    "a parameter level symlinked out": ({"parameters/risk/high.txt": (LINK, "../../../out/secret.txt")},
                                        "scenario '{p}': 'high.txt' leads outside the scenario's folder '{p}'"),
    "requests symlinked out": ({"requests.jsonl": (LINK, "{out}/secret.txt")},
                               "scenario '{p}': 'requests.jsonl' leads outside the scenario's folder '{p}'"),
    "a FIFO as the user template": ({"user_template.txt": FIFO},
                                    "prompt file '{p}/user_template.txt' is not a regular file"),
    "a FIFO as the requests": ({"requests.jsonl": FIFO},
                               "scenario '{p}': field 'requests': requests file '{p}/requests.jsonl' is not a regular file"),
}


@pytest.mark.parametrize("case", PROMPTS_REFUSED)
def test_authors_prompt_folder_never_reads_outside_itself(tmp_path, case):
    files, message = PROMPTS_REFUSED[case]
    out = tmp_path / "out"
    _make(out, {"secret.txt": "sk-secret\n"})
    folder = tmp_path / "prompts"
    _make(folder, {"system_prompt.txt": "S {risk}."} | {
        name: (LINK, text[1].format(out=out)) if isinstance(text, tuple) else text for name, text in files.items()})
    assert _load_error(gg.load_scenario, folder) == message.format(p=folder.resolve())
