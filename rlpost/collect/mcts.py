"""Monte Carlo tree search over partial responses: iTool's fragment-level preference pairs.

iTool (Zeng et al., arXiv 2501.09766, section 3.3; reference code zeng-yirong/iTool
``mcts/mcts_vllm.py``) searches, per task, a tree whose root is the prompt and whose nodes are
response fragments; a node's children are alternative next fragments. At every node with two
or more children, the best and the worst child by value make a preference pair that shares the
prefix and differs in one fragment (DPO/SimPO then train on the differing tokens only).

One search iteration, batched over all tasks (one generate call for the expansions of every
tree, one for the rollouts):

1. **Selection** from the root: while a node has more than `num_actions` children (it has been
   expanded at least twice, as in the reference) and the depth is below `max_depth`, go to the
   child maximising ``V/(N+1) + c * prior * sqrt(ln N_parent / (N+1))`` (the reference's
   ``best_child``; ``ln`` of at least 1 visit). A selected node that is terminal, at
   `max_depth`, or still over `num_actions` children is not expanded but still simulated,
   scored and backed up (the reference skips the iteration; with its deterministic selection
   the skip then repeats every iteration, and the search stops growing).
2. **Expansion**: `num_actions` continuations are sampled from the node's state (prompt + path
   tokens) at `temperature` (the paper: 1.5, 50 tokens). Each is split into fragments after the
   delimiters ``". "``, ``", "``, ``"="``, ``"("`` (the reference's regex; never inside a
   multi-byte character), `fragments_per_step`
   fragments per node, chained as a path of new nodes; at `max_depth` the rest of a sample is one
   node. A node's prior is ``exp(mean logprob of its tokens)``. Each new node starts with the
   fast reward of its fragment as its value (`fast_reward`).
3. **Simulation**: from the expanded node, follow the highest-value child for at most
   `simulation_steps` steps; unless that node ends the response, one sampled continuation to the
   end (`rollout_max_tokens`, not added to the tree) completes it.
4. **Rollout reward** of the complete response (prompt excluded) from the task's `score`: the
   default is BFCL's AST match (+1 when the answer matches the ground truth, -1 otherwise); the
   paper scores with the policy's self-evaluation instead (not implemented here).
5. **Back-propagation**: every node from the simulated one to the root gets ``V += r, N += 1``.

Pairs: at each node with >= 2 children, chosen = the max-value child, rejected = the min-value
child, kept iff ``V_max - V_min >= value_threshold`` (0.1), the word overlap of the two fragments
``<= overlap_limit`` (0.95) and ``V_max >= accept_value`` (-0.3): the reference's filters.

Differences from the reference, on purpose: the tree lives in token ids (the fragments are the
sampled tokens, so a pair's tokens are the ones the policy produced, and node priors are exact);
vLLM's ``repetition_penalty=0.75`` is not applied (our `GenParams` has no such field); the rollout
reward is the task's own score instead of self-evaluation; a task without a call in its ground
truth (irrelevance) gets the fast reward's call term reversed (+0.1 when the fragment has no
``)``), where the reference, lacking a ground truth, rewards any ``)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlpost.errors import RlpostError
from rlpost.generate import GenParams, Generator
from rlpost.seeds import derive_seed
from rlpost.types import PreferencePair

SPLIT = re.compile(r"(\. |, |=|\()")
"""Fragment delimiters (iTool ``get_actions``: ``r'(\\. |\\, |=|\\()'``); a fragment ends after one."""


@dataclass
class MCTSConfig:
    """Search and pair-filter settings; defaults are the reference code's (``mcts/main.py``)."""

    iterations: int = 5
    """Search iterations per task (``mcts_iters``)."""
    num_actions: int = 3
    """Continuations sampled per expansion (``num_actions``)."""
    temperature: float = 1.5
    """Sampling temperature of expansions and rollouts."""
    max_tokens: int = 50
    """Tokens per expansion sample."""
    fragments_per_step: int = 2
    """Fragments per tree node (``step_limit``)."""
    max_depth: int = 3
    """Deepest node; the rest of a sample at this depth is one node (``depth``)."""
    exploration: float = 1.0
    """c in the selection score."""
    simulation_steps: int = 2
    """Greedy-by-value steps down the tree before the rollout (``max_simulation_steps``)."""
    rollout_max_tokens: int = 128
    """Tokens of the sampled continuation that completes a rollout."""
    value_threshold: float = 0.1
    """Smallest value gap (chosen - rejected) of a kept pair."""
    overlap_limit: float = 0.95
    """Largest word overlap of a kept pair's two fragments."""
    accept_value: float = -0.3
    """Smallest value of a kept pair's chosen fragment."""

    def validate(self) -> None:
        """Raise RlpostError on settings no search can use."""
        checks = [(self.iterations >= 1, "iterations must be >= 1"),
                  (self.num_actions >= 2, "num_actions must be >= 2 (pairs need two children)"),
                  (self.temperature > 0, "temperature must be > 0 (greedy samples are identical)"),
                  (self.max_tokens >= 1 and self.rollout_max_tokens >= 1,
                   "max_tokens and rollout_max_tokens must be >= 1"),
                  (self.fragments_per_step >= 1, "fragments_per_step must be >= 1"),
                  (self.max_depth >= 1, "max_depth must be >= 1"),
                  (self.exploration >= 0, "exploration must be >= 0"),
                  (self.simulation_steps >= 0, "simulation_steps must be >= 0")]
        for ok, message in checks:
            if not ok:
                raise RlpostError(f"mcts: {message}")


@dataclass
class SearchTask:
    """One tree's root: the prompt, the ground-truth answer text (for the fast reward; "" when
    the right answer is no call) and the score of a complete response (the rollout reward)."""

    prompt_ids: list[int]
    reference: str
    score: Callable[[str], float]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Node:
    """A fragment of a response: its tokens, text, prior, value V, visits N."""

    ids: list[int]
    text: str
    prior: float
    value: float = 0.0
    visits: int = 0
    stop: bool = False
    """The response ends with this node (the sample finished with "stop")."""
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def path(self) -> list[Node]:
        """Nodes from the root's first child down to this one."""
        out, node = [], self
        while node.parent is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def path_ids(self) -> list[int]:
        return [t for n in self.path() for t in n.ids]

    def path_text(self) -> str:
        return "".join(n.text for n in self.path())


# --- pure parts ----------------------------------------------------------------------------


def word_overlap(a: str, b: str) -> float:
    """|words(a) & words(b)| / min(|words(a)|, |words(b)|) over whitespace-split word sets
    (iTool ``calculate_overlap_ratio``); 0 when either is empty."""
    sa, sb = set(a.split()), set(b.split())
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / min(len(sa), len(sb))


def fast_reward(reference: str, fragment: str) -> float:
    """A node's initial value (iTool ``get_reward(fast_reward=True)``): 0 for a blank fragment;
    else +0.1 when ``")]"`` is in both or neither of `reference` and `fragment` (-0.1
    otherwise), plus ``word_overlap(reference, fragment) - 0.5``. With no reference ("": the
    right answer is no call) the call term is +0.1 iff the fragment has no ``")"``."""
    if not fragment.strip():
        return 0.0
    if not reference:
        return 0.1 if ")" not in fragment else -0.1
    same = (")]" in fragment) == (")]" in reference)
    return (0.1 if same else -0.1) + word_overlap(reference, fragment) - 0.5


def selection_score(child: Node, parent_visits: int, c: float) -> float:
    """``V/(N+1) + c * prior * sqrt(ln max(N_parent, 1) / (N+1))`` (iTool ``best_child``)."""
    return (child.value / (child.visits + 1)
            + c * child.prior * math.sqrt(math.log(max(parent_visits, 1)) / (child.visits + 1)))


def split_fragments(text: str, ends: Sequence[int | None]) -> list[int]:
    """Token counts of the fragments of a sample decoding to `text`, whose k-th token ends at
    character `ends[k]` of it (None: inside a character, never a cut): a fragment ends with the
    first token at or after each delimiter's end (`SPLIT`); the last fragment takes the
    remaining tokens. Sums to len(ends)."""
    cuts = [m.end() for m in SPLIT.finditer(text)]
    sizes, start, c = [], 0, 0
    for k, end in enumerate(ends):
        if end is not None and c < len(cuts) and end >= cuts[c]:
            sizes.append(k + 1 - start)
            start = k + 1
            while c < len(cuts) and cuts[c] <= end:
                c += 1
    if start < len(ends):
        sizes.append(len(ends) - start)
    return sizes


def group_steps(sizes: Sequence[int], per_step: int, depth: int, max_depth: int) -> list[int]:
    """Token counts of the tree nodes a sample becomes when expanded from a node at `depth`:
    `per_step` fragments per node; the node at `max_depth` takes everything left."""
    steps = [sum(sizes[i:i + per_step]) for i in range(0, len(sizes), per_step)]
    room = max(max_depth - depth, 1)
    if len(steps) > room:
        steps = steps[:room - 1] + [sum(steps[room - 1:])]
    return steps


def preference_pairs(root: Node, prompt_ids: list[int], cfg: MCTSConfig,
                     info: dict[str, Any] | None = None) -> list[PreferencePair]:
    """Pairs of the tree under `root` by the rules in the module docstring, parents before
    children. Each pair's prompt is `prompt_ids` + the path tokens to the node."""
    out, stack = [], [root]
    while stack:
        node = stack.pop(0)
        stack.extend(node.children)
        if len(node.children) < 2:
            continue
        best = max(node.children, key=lambda n: n.value)
        worst = min(node.children, key=lambda n: n.value)
        if (best.value - worst.value < cfg.value_threshold
                or word_overlap(best.text, worst.text) > cfg.overlap_limit
                or best.value < cfg.accept_value or best.ids == worst.ids):
            continue
        out.append(PreferencePair(
            prompt_ids=list(prompt_ids) + node.path_ids(), chosen_ids=list(best.ids),
            rejected_ids=list(worst.ids), chosen_score=best.value, rejected_score=worst.value,
            info={**(info or {}), "prefix": node.path_text(), "chosen": best.text,
                  "rejected": worst.text, "depth": node.depth}))
    return out


# --- the search ----------------------------------------------------------------------------


def _select(root: Node, cfg: MCTSConfig) -> tuple[Node, bool]:
    """(the selected node, whether to expand it)."""
    node = root
    while len(node.children) > cfg.num_actions and node.depth < cfg.max_depth:
        node = max(node.children, key=lambda ch: selection_score(ch, node.visits, cfg.exploration))
    expand = not (len(node.children) > cfg.num_actions or node.stop or node.depth >= cfg.max_depth)
    return node, expand


def _expand(node: Node, ids: list[int], logprobs: list[float], finished: bool,
            decode: Callable[[list[int]], str], reference: str, cfg: MCTSConfig) -> None:
    if not ids:
        return
    full = decode(ids)
    # a token ends a clean prefix when the ids up to it decode to a prefix of the whole text
    # without a broken character (a multi-byte character split over tokens decodes to U+FFFD)
    ends = []
    for k in range(len(ids)):
        text = decode(ids[:k + 1])
        ends.append(len(text) if full.startswith(text) and not text.endswith("\ufffd") else None)
    steps = group_steps(split_fragments(full, ends), cfg.fragments_per_step, node.depth,
                        cfg.max_depth)
    parent, at = node, 0
    for i, n in enumerate(steps):
        frag_ids, frag_lp = ids[at:at + n], logprobs[at:at + n]
        at += n
        text = decode(frag_ids)
        child = Node(frag_ids, text, math.exp(sum(frag_lp) / len(frag_lp)),
                     value=fast_reward(reference, text),
                     stop=finished and i == len(steps) - 1, parent=parent)
        parent.children.append(child)
        parent = child


def _simulate(node: Node, cfg: MCTSConfig) -> Node:
    for _ in range(cfg.simulation_steps):
        if node.stop or not node.children:
            break
        node = max(node.children, key=lambda ch: ch.value)
    return node


def _backpropagate(node: Node | None, reward: float) -> None:
    while node is not None:
        node.value += reward
        node.visits += 1
        node = node.parent


@dataclass
class SearchResult:
    roots: list[Node]
    pairs: list[PreferencePair]
    generate_calls: int
    """Calls to the generator (two per iteration at most, whatever the number of tasks)."""


def search(generator: Generator, decode: Callable[[list[int]], str], tasks: Sequence[SearchTask],
           cfg: MCTSConfig, seed: int) -> SearchResult:
    """Run `cfg.iterations` MCTS iterations on every task's tree, batched over the tasks, and
    extract the preference pairs. `decode` turns token ids into text (the tokenizer's decode
    without special tokens). Raises RlpostError on an invalid `cfg`."""
    cfg.validate()
    roots = [Node([], "", 1.0) for _ in tasks]
    calls = 0
    room = generator.max_model_len
    for it in range(cfg.iterations):
        selected = [(t, *_select(r, cfg)) for t, r in enumerate(roots)]
        # a node whose state leaves no room for a sample is not expanded
        picked = [(t, node) for t, node, expand in selected if expand
                  and len(tasks[t].prompt_ids) + len(node.path_ids()) + cfg.max_tokens <= room]
        if picked:
            prompts = [tasks[t].prompt_ids + node.path_ids() for t, node in picked
                       for _ in range(cfg.num_actions)]
            outs = generator.generate(prompts, GenParams(
                temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                seed=derive_seed(seed, "mcts-expand", it)))
            calls += 1
            for k, (t, node) in enumerate(picked):
                for out in outs[k * cfg.num_actions:(k + 1) * cfg.num_actions]:
                    _expand(node, out.token_ids, out.logprobs, out.finish_reason == "stop",
                            decode, tasks[t].reference, cfg)
        # every tree is simulated and scored, expanded or not: a selection that ends on a
        # finished answer (or at max_depth) is evaluated and backed up, so the visit counts
        # move and the next selection can differ (the reference skips the iteration, and its
        # deterministic selection then repeats the skip forever)
        ends = [(t, _simulate(node, cfg)) for t, node, _ in selected]
        open_ends = [(t, leaf) for t, leaf in ends if not leaf.stop]
        tails: dict[int, str] = {}
        longest = max((len(tasks[t].prompt_ids) + len(leaf.path_ids()) for t, leaf in open_ends),
                      default=room)
        if open_ends and longest < room:
            outs = generator.generate(
                [tasks[t].prompt_ids + leaf.path_ids() for t, leaf in open_ends],
                GenParams(temperature=cfg.temperature,
                          max_tokens=min(cfg.rollout_max_tokens, room - longest),
                          seed=derive_seed(seed, "mcts-rollout", it)))
            calls += 1
            tails = {id(leaf): out.text for (_, leaf), out in zip(open_ends, outs)}
        for t, leaf in ends:
            reward = tasks[t].score(leaf.path_text() + tails.get(id(leaf), ""))
            if not math.isfinite(reward):
                raise RlpostError(f"mcts: the score of task {t} ({tasks[t].info}) is {reward}")
            _backpropagate(leaf, reward)
    pairs = [p for task, root in zip(tasks, roots)
             for p in preference_pairs(root, task.prompt_ids, cfg, task.info)]
    return SearchResult(roots, pairs, calls)
