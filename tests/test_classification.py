"""ClassificationEnv: CLS-RL prompts and rewards, splits, candidate rules, datasets."""

import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from rlpost.env import make, turn_limit
from rlpost.envs.classification import (ANSWER_SUFFIX, DATASETS, THINK_SUFFIX,
                                        ClassificationConfig, ClassificationEnv, cls_rl_candidates,
                                        cls_rl_k, grade, load_dataset, load_examples, make_splits)
from rlpost.errors import RlpostError


def _env(**kw) -> ClassificationEnv:
    return ClassificationEnv(ClassificationConfig(**kw))


def test_suffixes_are_cls_rls_exactly():
    assert THINK_SUFFIX == ("\n Please output the thinking process in <think> </think> and final "
                            "answer in <answer> </answer> tags.")
    assert ANSWER_SUFFIX == "\n Please directly output the answer."
    for style, suffix in (("think", THINK_SUFFIX), ("answer", ANSWER_SUFFIX)):
        env = _env(prompt_style=style)
        env.reset(options={"task_id": env.tasks("train")[0]})
        (msg,) = env.messages()
        assert msg.role == "user" and msg.content.endswith(suffix)
        assert suffix not in msg.content[: -len(suffix)]


def test_prompt_holds_question_record_and_all_candidates():
    env = _env(dataset="topics")
    task = env.tasks("test")[3]
    obs, info = env.reset(options={"task_id": task})
    ex = env.data.examples[task]
    assert obs["text"].startswith(env.data.question + "\n" + ex.text + "\n")
    listed = obs["text"].split("[", 1)[1].split("]", 1)[0].split(", ")
    assert sorted(listed) == sorted(env.data.classes)
    assert info["label"] == ex.label and obs == {"text": obs["text"], "anchor": str(task)}


@pytest.mark.parametrize("action,reward,valid", [
    ("<think>it is about food</think> <answer>cooking</answer>", 1.0, True),
    ("<think>x</think><answer>  Cooking \n</answer>", 1.0, True),
    ("<answer>COOKING</answer> trailing text", 1.0, True),
    ("cooking", 1.0, True),                              # no tag: the whole text is the answer
    ("  CoOkInG\n", 1.0, True),
    ("<answer>cooking</answer><answer>sports</answer>", 1.0, True),   # first tag counts
    ("<answer>sports</answer><answer>cooking</answer>", 0.0, True),
    ("<think>cooking</think> <answer>music</answer>", 0.0, True),
    ("<answer>cook ing</answer>", 0.0, True),
    ("The answer is cooking", 0.0, True),
    ("<answer>cooking", 0.0, True),                      # unclosed tag: whole text, no match
    ("<answer> </answer>", 0.0, False),
    ("", 0.0, False),
    ("   \n\t", 0.0, False),
])
def test_think_reward(action, reward, valid):
    assert grade(action, "cooking", "think")[0] == reward
    assert grade(action, "cooking", "think")[2] == valid


@pytest.mark.parametrize("action,reward,valid", [
    ("cooking", 1.0, True),
    ("Cooking", 0.0, True),           # case-sensitive, as No-Thinking-CLS-RL
    ("cooking\n", 0.0, True),         # not stripped
    (" cooking", 0.0, True),
    ("<answer>cooking</answer>", 0.0, True),
    ("", 0.0, False),
    ("  ", 0.0, False),
])
def test_answer_reward(action, reward, valid):
    assert grade(action, "cooking", "answer")[0] == reward
    assert grade(action, "cooking", "answer")[2] == valid


@pytest.mark.parametrize("style", ["think", "answer"])
def test_step_info_and_single_turn(style):
    env = _env(prompt_style=style)
    task = env.tasks("train")[5]
    _, info = env.reset(options={"task_id": task})
    label = info["label"]
    action = f"<think>hm</think> <answer>{label}</answer>" if style == "think" else label
    obs, reward, term, trunc, info = env.step(action)
    assert (reward, term, trunc) == (1.0, True, False)
    assert info["success"] and info["valid"] and info["task_id"] == task
    assert info["prediction"] == label and info["reward_components"] == {"accuracy": 1.0}
    assert obs == {"text": "", "anchor": str(task)}
    # stepping after the end: inert, never raises
    obs, reward, term, trunc, info = env.step(label)
    assert (reward, term, info["valid"]) == (0.0, True, False)
    assert info["reward_components"] == {"accuracy": 0.0}
    # a wrong answer
    env.reset(options={"task_id": task})
    _, reward, term, _, info = env.step("definitely not a class")
    assert (reward, term, info["success"], info["valid"]) == (0.0, True, False, True)


def test_replay_and_reset_without_task():
    env = _env()
    task = env.tasks("train")[0]
    label = env.data.examples[task].label
    obs, info = env.reset(options={"task_id": task, "replay": [label, "ignored"]})
    assert obs["text"] == "" and info["success"] and info["reward_components"]["accuracy"] == 1.0
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    assert a == b and int(a["anchor"]) in env.tasks("train")
    drawn = {env.reset(seed=s)[0]["anchor"] for s in range(20)}
    assert len(drawn) > 5  # the seed draws the task (from the env's np_random)
    with pytest.raises(RlpostError, match="task_id must be an int in"):
        env.reset(options={"task_id": len(env.data.examples)})


@pytest.mark.parametrize("dataset", DATASETS)
def test_splits_sizes_disjoint_and_balanced(dataset):
    env = _env(dataset=dataset, shots_per_class=4, n_test=60)
    train, test = env.tasks("train"), env.tasks("test")
    labels = [e.label for e in env.data.examples]
    n_classes = len(env.data.classes)
    assert Counter(labels[i] for i in train) == {c: 4 for c in env.data.classes}
    assert len(test) == 60 and not set(train) & set(test)
    per_class = Counter(labels[i] for i in test).values()
    assert max(per_class) - min(per_class) <= 1 and len(per_class) == n_classes
    with pytest.raises(ValueError):
        env.tasks("validation")


def test_test_split_shrinks_when_the_data_runs_out():
    env = _env(dataset="iris", shots_per_class=16, n_test=200)
    assert len(env.tasks("train")) == 48 and len(env.tasks("test")) == 150 - 48


def test_make_splits_pure():
    labels = ["a"] * 10 + ["b"] * 3
    train, test = make_splits(labels, shots=2, n_test=5, seed=1)
    assert make_splits(labels, shots=2, n_test=5, seed=1) == (train, test)
    assert len(train) == 4 and len(test) == 5 and not set(train) & set(test)
    assert Counter(labels[i] for i in test) == {"a": 4, "b": 1}   # round-robin until b runs out
    assert make_splits(labels, shots=2, n_test=5, seed=2) != (train, test)


def test_prompts_deterministic_and_stable_across_processes():
    cfg = ClassificationConfig(dataset="topics", candidates="all", split_seed=3)
    a, b = ClassificationEnv(cfg), ClassificationEnv(cfg)
    for t in a.tasks("train")[:10] + a.tasks("test")[:10]:
        assert a.prompt(t) == b.prompt(t)
    assert a.tasks("test") == b.tasks("test")
    code = ("from rlpost.envs.classification import *; e = ClassificationEnv("
            "ClassificationConfig(split_seed=3)); t = e.tasks('test'); "
            "print(repr((t[:5], e.prompt(t[0]))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "123"}).stdout.strip()
    assert out == repr((a.tasks("test")[:5], a.prompt(a.tasks("test")[0])))
    other = ClassificationEnv(ClassificationConfig(dataset="topics", split_seed=4))
    assert other.tasks("train") != a.tasks("train")


def test_cls_rl_rule_on_fifty_classes():
    classes = [f"class_{i}" for i in range(50)]
    assert [cls_rl_k(n) for n in (2, 29, 30, 50, 74, 75, 200, 250, 1000)] == \
        [2, 29, 30, 30, 30, 30, 80, 100, 100]
    seen_positions = set()
    for seed in range(20):
        label = classes[seed]
        out = cls_rl_candidates(classes, label, random.Random(seed))
        assert len(out) == 30 and len(set(out)) == 30 and label in out
        assert set(out) <= set(classes)
        seen_positions.add(out.index(label))
    assert len(seen_positions) > 5, "ground truth must be shuffled in, not at a fixed place"
    few = cls_rl_candidates(classes[:10], "class_3", random.Random(0))
    assert sorted(few) == sorted(classes[:10])


def test_cls_rl_candidates_in_env_prompt():
    env = _env(dataset="digits", candidates="cls_rl", shots_per_class=2, n_test=10)
    task = env.tasks("test")[0]
    assert sorted(env.candidates(task)) == [str(i) for i in range(10)]   # < 30 classes: all
    assert env.candidates(task) == env.candidates(task)


@pytest.mark.parametrize("dataset,size,classes", [
    ("topics", 600, ("sports", "cooking", "weather", "finance", "music", "health")),
    ("sentiment", 400, ("positive", "negative")),
    ("digits", 1797, tuple(str(i) for i in range(10))),
    ("iris", 150, ("setosa", "versicolor", "virginica")),
    ("wine", 178, ("cultivar_1", "cultivar_2", "cultivar_3")),
    ("breast_cancer", 569, ("malignant", "benign")),
])
def test_datasets(dataset, size, classes):
    data = load_dataset(dataset)
    assert len(data.examples) == size and data.classes == classes
    assert {e.label for e in data.examples} == set(classes)
    assert load_examples(dataset) == list(data.examples)
    assert all(e.text.strip() for e in data.examples)


def test_generated_text_is_distinct_deterministic_and_indicative():
    for name in ("topics", "sentiment"):
        texts = [e.text for e in load_dataset(name).examples]
        assert len(set(texts)) == len(texts)
    ex = load_dataset("topics").examples
    assert any("." in e.text[:-1] for e in ex), "some examples have two sentences"
    sports = [e.text.lower() for e in ex if e.label == "sports"]
    assert all(any(w in t for w in ("match", "team", "club", "league", "coach", "goal", "medal",
                                    "tournament", "striker", "champion", "olympic", "penalt",
                                    "stadium", "referee", "trophy", "marathon", "cyclist", "boxer",
                                    "captain", "player", "squad", "game")) for t in sports)


def test_digits_grid_and_tables_render():
    ex = load_dataset("digits").examples[0]
    rows = ex.text.split("\n")
    assert len(rows) == 8 and all(len(r) == 8 for r in rows) and ex.label == "0"
    assert set(ex.text) <= set(" .:-=+*#%@\n") and len(ex.pixels) == 64
    bc = load_dataset("breast_cancer").examples[0].text.split("\n")
    assert len(bc) == 10 and all(line.startswith("mean ") for line in bc)
    assert "e+" not in load_dataset("wine").examples[0].text
    assert load_dataset("iris").examples[0].text.split("\n")[0] == "sepal length (cm): 5.1"


def test_digit_images_for_vlms():
    env = _env(dataset="digits", images=True, shots_per_class=1, n_test=5)
    obs, _ = env.reset(options={"task_id": env.tasks("train")[0]})
    (img,) = env.messages()[-1].images  # images travel in the chat, not in obs
    assert img.size == (112, 112) and img.mode == "RGB"
    assert "8x8 grid" not in obs["text"] and "image" in obs["text"]


def test_bad_configs_are_user_errors():
    for kw in ({"dataset": "imagenet"}, {"prompt_style": "cot"}, {"candidates": "some"},
               {"shots_per_class": 0}, {"dataset": "iris", "images": True}):
        with pytest.raises(RlpostError):
            _env(**kw)


def test_make_and_no_heavy_imports():
    env = make("rlpost/Classification-v0", ClassificationConfig(dataset="sentiment"))
    assert isinstance(env.unwrapped, ClassificationEnv) and turn_limit(env) == 1
    assert env.unwrapped.cfg.dataset == "sentiment"
    # numpy comes with gymnasium; the heavy libraries load only when an env needs them
    code = ("import sys, rlpost.envs, rlpost.envs.classification, rlpost.envs.guess_number; "
            "print([m for m in ('sklearn', 'torch', 'PIL') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demonstrations_come_from_train_with_distinct_labels_in_the_style_format():
    from rlpost.reward import THINK_ANSWER_RE

    for style in ("think", "answer"):
        env = ClassificationEnv(ClassificationConfig(demos=2, prompt_style=style))
        task = env.tasks("test")[3]
        env.reset(options={"task_id": task})
        msgs = env.messages()
        assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
        assert msgs[-1].content == env.prompt(task)
        demo_tasks = env._demo_tasks()
        assert len(set(demo_tasks)) == 2 and task not in demo_tasks
        assert set(demo_tasks) <= set(env.tasks("train"))
        labels = [env.data.examples[t].label for t in demo_tasks]
        assert labels[0] != labels[1]
        for t, answer in zip(demo_tasks, (msgs[1].content, msgs[3].content)):
            label = env.data.examples[t].label
            # the demonstration is itself a full-reward answer of its style
            assert grade(answer, label, style)[0] == 1.0
            if style == "think":
                assert THINK_ANSWER_RE.fullmatch(answer)
        env.reset(options={"task_id": task})
        assert [m.content for m in env.messages()] == [m.content for m in msgs]
