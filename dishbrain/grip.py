"""`dishbrain grip`: how far the synaptic weights alone steer the paddle (issue 17, Stage 1).

A learning rule can only teach the culture to play through its synapses, so before any rule is
tried: do the weights reach the paddle at all? (docs/learning.md, entry 4: in the default model
hand-set extremes of every sensory -> motor weight moved the band -> push map by 0.04-0.13, moving
the motor readout moved it by 0.35.) For each seed a fresh culture plays four arms of one session
each, the same culture and the same game on every arm:

- ``toward``: the E->E weights edited towards the map that tracks the ball, the wiring kept;
- ``against``: the same edit mirrored (top and bottom swapped);
- ``vertical``: unedited, read out with the ``vertical`` layout (the top quadrants push up, the
  side the innate, geometric map favours);
- ``mirrored``: unedited, read out with ``vertical_mirrored`` (the bottom quadrants push up).

The edited arms keep the player's own layout (``dishbrain``'s diagonal by default, on which the
geometric map cancels), so what separates them is the weights. The edits (`EDITS`, in
`dishbrain.weight_edits`) are the lab notebook's (``experiments/notebook/mapping.py rewire``):
``direct`` sets every E->E synapse from a band's sensory neurons (the excitatory neurons its
electrode records) onto the motor neurons of the right direction (up for the top four bands) to
``g_ee_max_per_ms`` and onto the wrong one to 0; ``motor-inputs`` doubles every E->E input of
up-region neurons from the top half of the dish (capped at the maximum) and zeroes those from the
bottom half, mirrored for down-region neurons; ``both`` applies motor-inputs, then direct.
Plasticity runs as configured (the weights may drift back during the session: that is part of what
is measured).

Measures per arm: the *map*, top - bottom = the mean push (+1 up, -1 down, 0 stay) over the ticks
in play with the ball in the top half of the court minus the same in the bottom half (> 0: the
paddle goes where the ball is); and the ARL (hits per rally) of the session. Then

    grip = (map_toward - map_against) / (map_vertical - map_mirrored)

(means over seeds): the share of the readout's span that the weights command. Issue 17's gate:
ARL >= 1.5 towards and <= 0.6 against (means over 8 seeds, 5-minute sessions).

Grip reads the weights' reach at its extremes; a learning rule moves them part of the way.
``dose`` D > 0 (``--dose``) adds two arms per seed that measure the slope in between on the
direct route, the synapses every presynaptically triggered capture rule writes
(docs/learning.md, entries 31f and 33):

- ``dose-toward``: every E->E synapse from a band's sensory neurons onto the right side's motor
  neurons scaled by e^(D/2) (capped at the maximum), onto the wrong side's by e^(-D/2);
- ``dose-against``: the same mirrored.

Each arm's *direct index* is the realised move (entry 26l's index, the cap included): per band
log(summed weight onto up / before) - log(the same onto down), the top four bands' mean minus
the bottom four's; about +2D and -2D. Then

    sensitivity = (map_dose_toward - map_dose_against) / (index_dose_toward - index_dose_against)

(means over seeds): how far the map moves per unit of the direct route's index, so a rule that
must move the map by m needs to move the index by about m / sensitivity.

Run folder (``--out DIR``; results are written as each session ends, a rerun resumes)::

    DIR/grip-config.json                  what was asked (a rerun must ask the same)
    DIR/arms/seed<N>-<arm>.json           one session's numbers
    DIR/sessions/seed<N>-<arm>.jsonl      its session log (dishbrain/session.py)
    DIR/grip.json, DIR/grip.png           the summary and the figure
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dishbrain.weight_edits import EDITS, edit_saved_culture
from envs.config import Config, check_choice, check_int, check_number

ARMS = ("toward", "against", "vertical", "mirrored")
#: The arms a dose > 0 adds (module notes).
DOSE_ARMS = ("dose-toward", "dose-against")
#: The readout arms' layouts (dishbrain/mea.py MOTOR_LAYOUTS).
VERTICAL_LAYOUTS = {"vertical": "vertical", "mirrored": "vertical_mirrored"}
#: Options grip sets itself on every session; a config may not set them.
GRIP_SET_OPTIONS = ("seed", "condition", "state_in", "state_out")
#: The gate of issue 17, Stage 1 (means over 8 seeds, 5-minute sessions).
GATE_ARL_TOWARD, GATE_ARL_AGAINST = 1.5, 0.6
BANDS = 8
PLAYER = "culture"


@dataclass(frozen=True)
class GripConfig(Config):
    """What `run_grip` measures, validated on construction."""

    seeds: tuple[int, ...] = tuple(range(8))
    minutes: float = 5.0                  # game time of each session (issue 17: 5 minutes)
    edit: str = "both"                    # the weight edit of the toward / against arms
    condition: str = "stimulus"           # the feedback condition every arm plays
    #: > 0: the two graded direct-route arms (module notes), each band's right / wrong ratio
    #: scaled by e^dose; 0: none.
    dose: float = 0.0
    #: Options of the culture player (n_neurons, layout, culture_config, decoder_config, ...).
    player_options: dict = field(default_factory=dict)
    #: PongConfig field overrides.
    game: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.seeds, tuple) and self.seeds):
            raise ValueError(f"GripConfig.seeds must be a non-empty list of seeds, "
                             f"got {self.seeds!r}")
        for s in self.seeds:
            check_int(self, "seeds", s, lo=0)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"GripConfig.seeds must not repeat a seed, got {list(self.seeds)}")
        check_number(self, "minutes", self.minutes, lo=0, lo_open=True)
        check_choice(self, "edit", self.edit, EDITS)
        if self.dose != 0:
            check_number(self, "dose", self.dose, lo=0, hi=10, lo_open=True)
        from dishbrain.feedback import FEEDBACK_RULES
        check_choice(self, "condition", self.condition, tuple(FEEDBACK_RULES))
        for name in ("player_options", "game"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"GripConfig.{name} must be a table of options, "
                                 f"got {getattr(self, name)!r}")
        taken = sorted(set(self.player_options) & set(GRIP_SET_OPTIONS))
        if taken:
            raise ValueError(f"GripConfig.player_options must not set {taken}: grip sets "
                             f"{list(GRIP_SET_OPTIONS)} itself")

    @property
    def arms(self) -> tuple[str, ...]:
        """The arms every seed plays."""
        return ARMS + DOSE_ARMS if self.dose > 0 else ARMS

    def identity(self) -> dict:
        """Everything that decides a session's result (the seeds list aside); a run without a
        dose keeps the identity it had before doses existed."""
        out = {"minutes": self.minutes, "edit": self.edit, "condition": self.condition,
               "player_options": self.player_options, "game": self.game}
        if self.dose > 0:
            out["dose"] = self.dose
        return out


def check_config(config: GripConfig) -> None:
    """Fail now, with one line, on anything the culture player or the game would reject."""
    from dishbrain.player import player_options
    from envs.pong import PongConfig

    known = player_options(PLAYER) or []
    unknown = sorted(set(config.player_options) - set(known))
    if unknown:
        raise ValueError(f"unknown culture option(s) {unknown}; allowed: "
                         f"{sorted(set(known) - set(GRIP_SET_OPTIONS))}")
    PongConfig.from_dict(config.game)
    # The config dataclasses' own checks of every table, without building a culture.
    from dishbrain.decoding import DecoderConfig
    from dishbrain.experiment.sweep import check_config_tables
    from dishbrain.mea import MEA, MEAConfig
    check_config_tables("culture", config.player_options)
    decoder = config.player_options.get("decoder_config") or {}
    dec = decoder if isinstance(decoder, DecoderConfig) else DecoderConfig.from_dict(decoder)
    mea_opt = config.player_options.get("mea_config") or {}
    mea = MEA(mea_opt if isinstance(mea_opt, MEAConfig) else MEAConfig.from_dict(mea_opt))
    for layout in (config.player_options.get("layout"), dec.layout, *VERTICAL_LAYOUTS.values()):
        if layout is not None and layout not in mea.layout_names:
            raise ValueError(f"layout must be one of {list(mea.layout_names)}, got {layout!r}")


# ---------------------------------------------------------------------------------------------
# One session


def push_map(ball_y: np.ndarray, in_play: np.ndarray, push: np.ndarray) -> dict[str, Any]:
    """The band -> push map of a session: per band of the ball's height (top to bottom; ball_y
    in court heights, 0 = top) the mean push, and top - bottom (module notes). NaN where a half
    has no tick in play."""
    from dishbrain.encoding import PlaceCodeEncoder

    push = np.asarray(push, float)
    live = np.asarray(in_play, bool)
    band = PlaceCodeEncoder(BANDS).slots(ball_y)

    def mean(sel):
        return float(push[sel].mean()) if np.any(sel) else math.nan

    top, bottom = mean(live & (band < BANDS // 2)), mean(live & (band >= BANDS // 2))
    return {"map": top - bottom, "per_band": [mean(live & (band == k)) for k in range(BANDS)],
            "up_frac": float(np.mean(push > 0)) if push.size else math.nan,
            "down_frac": float(np.mean(push < 0)) if push.size else math.nan}


def _recorder(store: dict):
    """A wrapper factory recording, each step, the ball's height and whether it was in play
    when the action was chosen, and the action's push."""
    import gymnasium as gym

    from envs.pong import ACTION_DOWN, ACTION_UP, OBS_BALL_Y, OBS_IN_PLAY

    class PushRecorder(gym.Wrapper):
        def reset(self, **kwargs):
            obs, info = self.env.reset(**kwargs)
            self._obs = obs
            return obs, info

        def step(self, action):
            store["ball_y"].append(float(self._obs[OBS_BALL_Y]))
            store["in_play"].append(bool(self._obs[OBS_IN_PLAY] > 0.5))
            store["push"].append(1 if action == ACTION_UP else (-1 if action == ACTION_DOWN else 0))
            out = self.env.step(action)
            self._obs = out[0]
            return out

    return PushRecorder


def _player(config: GripConfig, seed: int, layout: str | None, state_in: Path | None = None):
    from dishbrain.player import make_agent

    options = dict(config.player_options)
    if layout is not None:
        options["layout"] = layout
    return make_agent(PLAYER, seed=seed, condition=config.condition, state_in=state_in, **options)


def play_arm(config: GripConfig, seed: int, arm: str, run_dir: Path) -> dict[str, Any]:
    """Play one arm of one seed; write and return its numbers (``arms/seed<N>-<arm>.json``)."""
    from dishbrain.metrics import rally_metrics, read_session
    from dishbrain.session import play_session
    from envs.pong import PongConfig

    if arm not in config.arms:
        raise ValueError(f"arm must be one of {config.arms}, got {arm!r}")
    start = time.perf_counter()
    changed, index = 0, 0.0
    if arm in VERTICAL_LAYOUTS:
        agent = _player(config, seed, VERTICAL_LAYOUTS[arm])
    else:
        fresh = _player(config, seed, None)
        layout = fresh.decoder.layout
        with tempfile.TemporaryDirectory(prefix="dishbrain_grip_") as tmp:
            src, dst = Path(tmp) / "fresh.npz", Path(tmp) / "edited.npz"
            fresh.culture.save(src)
            del fresh
            dosed = arm in DOSE_ARMS
            changed, index = edit_saved_culture(
                src, dst, layout, config.edit, arm in ("toward", "dose-toward"),
                config.dose if dosed else 0.0)
            # A loaded culture keeps its own configuration: only the readout's options remain.
            options = {k: v for k, v in config.player_options.items()
                       if k not in ("n_neurons", "culture_config", "mea_config")}
            agent = _player(dataclasses.replace(config, player_options=options), seed, None, dst)
    store: dict[str, list] = {"ball_y": [], "in_play": [], "push": []}
    log = run_dir / "sessions" / f"seed{seed}-{arm}.jsonl"
    play_session(agent, log_path=log, minutes=config.minutes, seed=seed,
                 env_config=PongConfig.from_dict(config.game), condition=config.condition,
                 progress=False, wrappers=[_recorder(store)],
                 agent_config=getattr(agent, "config_dict", None))
    session = read_session(log)
    m = rally_metrics(session, 0.0, None)
    result = {"seed": seed, "arm": arm, "layout": agent.decoder.layout,
              **push_map(store["ball_y"], store["in_play"], store["push"]),
              "arl": m.arl, "rallies": m.rallies, "hits": m.hits, "aces_pct": m.aces_pct,
              "synapses_edited": changed, "direct_index": index,
              "rate_hz": agent.culture.firing_rate_hz(),
              "wall_s": round(time.perf_counter() - start, 2)}
    agent.close()
    path = _arm_path(run_dir, seed, arm)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_jsonable(result), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return result


def _arm_path(run_dir: Path, seed: int, arm: str) -> Path:
    return run_dir / "arms" / f"seed{seed}-{arm}.json"


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _number(value) -> float:
    return math.nan if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# The run and its summary


def _mean_sem(values) -> tuple[float, float]:
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    if x.size == 0:
        return math.nan, math.nan
    sem = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), sem


def grip_ratio(map_toward: float, map_against: float, map_vertical: float,
               map_mirrored: float) -> float:
    """(map_toward - map_against) / (map_vertical - map_mirrored); NaN if the span is 0."""
    span = map_vertical - map_mirrored
    if not math.isfinite(span) or span == 0:
        return math.nan
    return (map_toward - map_against) / span


def sensitivity(map_toward: float, map_against: float, index_toward: float,
                index_against: float) -> float:
    """(map_dose_toward - map_dose_against) / (index_toward - index_against): the map's move
    per unit of the direct route's index; NaN if the indices do not differ."""
    span = index_toward - index_against
    if not math.isfinite(span) or span == 0:
        return math.nan
    return (map_toward - map_against) / span


def _key(arm: str) -> str:
    """An arm's name in grip.json's keys (``dose-toward`` -> ``dose_toward``)."""
    return arm.replace("-", "_")


def summarize(results: list[dict], config: GripConfig) -> dict[str, Any]:
    """grip.json's content from the arms' results (every seed with all of its arms)."""
    by = {(r["seed"], r["arm"]): r for r in results}
    arms = config.arms
    seeds = [s for s in config.seeds if all((s, a) in by for a in arms)]
    out: dict[str, Any] = {"seeds": seeds, "n": len(seeds), "minutes": config.minutes,
                           "edit": config.edit, "condition": config.condition,
                           "player_options": config.player_options, "game": config.game}
    for arm in arms:
        for key in ("map", "arl"):
            mean, sem = _mean_sem([_number(by[(s, arm)][key]) for s in seeds])
            out[f"{key}_{_key(arm)}"], out[f"{key}_{_key(arm)}_sem"] = mean, sem
    if config.dose > 0:
        out["dose"] = config.dose
        for arm in DOSE_ARMS:
            out[f"index_{_key(arm)}"] = _mean_sem(
                [_number(by[(s, arm)].get("direct_index")) for s in seeds])[0]
        out["sensitivity"] = sensitivity(out["map_dose_toward"], out["map_dose_against"],
                                         out["index_dose_toward"], out["index_dose_against"])
    out["grip"] = grip_ratio(out["map_toward"], out["map_against"], out["map_vertical"],
                             out["map_mirrored"])
    out["gate"] = {"arl_toward_min": GATE_ARL_TOWARD, "arl_against_max": GATE_ARL_AGAINST,
                   "met": bool(out["arl_toward"] >= GATE_ARL_TOWARD
                               and out["arl_against"] <= GATE_ARL_AGAINST
                               and len(seeds) >= 8 and config.minutes >= 5)}
    per_seed = []
    for s in seeds:
        row: dict[str, Any] = {"seed": s}
        for arm in arms:
            r, k = by[(s, arm)], _key(arm)
            row.update({f"map_{k}": r["map"], f"arl_{k}": r["arl"],
                        f"per_band_{k}": r["per_band"], f"up_frac_{k}": r["up_frac"]})
            if arm in DOSE_ARMS:
                row[f"index_{k}"] = r.get("direct_index")
        row["grip"] = grip_ratio(*(_number(row[f"map_{a}"]) for a in ARMS))
        if config.dose > 0:
            row["sensitivity"] = sensitivity(
                *(_number(row[f"map_{_key(a)}"]) for a in DOSE_ARMS),
                *(_number(row[f"index_{_key(a)}"]) for a in DOSE_ARMS))
        per_seed.append(row)
    if config.dose > 0:   # the per-seed ratios' spread (the ratio itself is of the means)
        out["sensitivity_sem"] = _mean_sem([_number(r["sensitivity"]) for r in per_seed])[1]
    out["per_seed"] = per_seed
    return _jsonable(out)


def format_table(summary: dict) -> str:
    """Per seed and mean +/- SEM: each arm's map and ARL, and grip."""
    def f(v, spec="+.3f"):
        return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
            else format(v, spec)

    w = 16
    dosed = summary.get("dose") is not None
    head = ("seed    " + "".join(f"{'map ' + a:>{w}}" for a in ARMS)
            + "".join(f"{'ARL ' + a:>{w}}" for a in ARMS) + f"{'grip':>8}")
    lines = [head]
    for row in summary["per_seed"]:
        lines.append(f"{row['seed']:<8}" + "".join(f"{f(row['map_' + a]):>{w}}" for a in ARMS)
                     + "".join(f"{f(row['arl_' + a], '.2f'):>{w}}" for a in ARMS)
                     + f"{f(row['grip'], '+.2f'):>8}")

    def pm(key, spec):
        return f"{f(summary[key], spec)} ± {f(summary[key + '_sem'], spec.lstrip('+'))}"

    lines.append(f"{'mean':<8}" + "".join(f"{pm('map_' + a, '+.3f'):>{w}}" for a in ARMS)
                 + "".join(f"{pm('arl_' + a, '.2f'):>{w}}" for a in ARMS)
                 + f"{f(summary['grip'], '+.2f'):>8}")
    gate = summary["gate"]
    lines.append(f"grip = (map_toward - map_against) / (map_vertical - map_mirrored) = "
                 f"{f(summary['grip'], '+.3f')} (means over {summary['n']} seeds)")
    lines.append(f"gate (ARL toward >= {gate['arl_toward_min']}, against <= "
                 f"{gate['arl_against_max']}, 8+ seeds, 5+ min): "
                 f"{'met' if gate['met'] else 'not met'} (ARL toward "
                 f"{f(summary['arl_toward'], '.2f')}, against {f(summary['arl_against'], '.2f')})")
    if dosed:
        lines.append("")
        lines.append(f"dose {summary['dose']:g} (the direct route's right / wrong ratio x "
                     f"e^{summary['dose']:g} per band)")
        wd = 18
        lines.append("seed    " + "".join(f"{h:>{wd}}" for h in (
            "map dose-toward", "map dose-against", "index toward", "index against",
            "sensitivity")))
        for row in summary["per_seed"]:
            lines.append(f"{row['seed']:<8}" + "".join(f"{f(row[k]):>{wd}}" for k in (
                "map_dose_toward", "map_dose_against", "index_dose_toward",
                "index_dose_against", "sensitivity")))
        lines.append(f"{'mean':<8}{pm('map_dose_toward', '+.3f'):>{wd}}"
                     f"{pm('map_dose_against', '+.3f'):>{wd}}"
                     f"{f(summary['index_dose_toward']):>{wd}}"
                     f"{f(summary['index_dose_against']):>{wd}}"
                     f"{pm('sensitivity', '+.3f'):>{wd}}")
        lines.append("sensitivity = (map_dose_toward - map_dose_against) / (index_dose_toward - "
                     f"index_dose_against) = {f(summary['sensitivity'])} map per unit of the "
                     f"direct route's index (means over {summary['n']} seeds; ± the per-seed "
                     "ratios' SEM)")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> Path:
    """Map and ARL per arm: each seed a dot (the same seed joined), the mean +/- SEM a bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = ARMS + (DOSE_ARMS if summary.get("dose") is not None else ())
    keys = [_key(a) for a in arms]
    fig, axes = plt.subplots(1, 2, figsize=(9 + 2 * (len(arms) - 4), 3.8))
    x = np.arange(len(arms))
    colors = ["#3a7", "#c54", "#48c", "#999", "#9c8", "#e99"][:len(arms)]
    for ax, key, label in ((axes[0], "map", "map: top - bottom push"), (axes[1], "arl", "ARL")):
        means = [_number(summary[f"{key}_{a}"]) for a in keys]
        sems = [_number(summary[f"{key}_{a}_sem"]) for a in keys]
        ax.bar(x, means, yerr=np.nan_to_num(sems), color=colors, alpha=0.6, capsize=4)
        for row in summary["per_seed"]:
            ax.plot(x, [_number(row[f"{key}_{a}"]) for a in keys], "k.-", lw=0.4, alpha=0.5)
        ax.set_xticks(x, arms)
        ax.set_ylabel(label)
        ax.axhline(0, color="k", lw=0.5)
    for level in (GATE_ARL_TOWARD, GATE_ARL_AGAINST):
        axes[1].axhline(level, color="k", ls=":", lw=0.8)
    dose = (f"; dose {summary['dose']:g}: sensitivity {_number(summary['sensitivity']):+.2f} "
            "map per unit index" if summary.get("dose") is not None else "")
    fig.suptitle(f"grip = {_number(summary['grip']):+.2f} ({summary['n']} seeds, "
                 f"{summary['minutes']:g} min, edit {summary['edit']}{dose})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _worker(config: GripConfig, seed: int, arm: str, run_dir: str) -> dict:
    return play_arm(config, seed, arm, Path(run_dir))


def _prepare(config: GripConfig, run_dir: Path) -> None:
    """Record the config in the run folder; refuse a folder of another configuration."""
    path = run_dir / "grip-config.json"
    identity = _jsonable(config.identity())
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None
        if old != identity:
            raise ValueError(f"{str(run_dir)!r} holds a grip run of another configuration "
                             f"({path.name} differs); use another --out")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identity, indent=1) + "\n", encoding="utf-8")


def run_grip(config: GripConfig, run_dir: str | Path | None = None, workers: int = 1,
             progress: bool = True) -> dict[str, Any]:
    """Play every (seed, arm) not already in `run_dir` (in `workers` processes), then write
    ``grip.json`` and ``grip.png`` there and return the summary. Without `run_dir` everything
    goes to a temporary folder that is removed afterwards."""
    check_config(config)
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="dishbrain_grip_") as tmp:
            return run_grip(config, tmp, workers, progress)
    run_dir = Path(run_dir)
    _prepare(config, run_dir)
    results, todo = [], []
    for seed in config.seeds:
        for arm in config.arms:
            path = _arm_path(run_dir, seed, arm)
            if path.exists():
                results.append(json.loads(path.read_text(encoding="utf-8")))
            else:
                todo.append((seed, arm))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(todo), desc="grip sessions", unit="session")
    failed: list[str] = []

    def record(seed, arm, get) -> None:
        try:
            results.append(get())
        except Exception as exc:  # noqa: BLE001  (one session's failure does not stop the rest)
            text = str(exc).strip().splitlines()
            failed.append(f"seed {seed} {arm}: {type(exc).__name__}: {text[0] if text else ''}")
        if bar is not None:
            bar.update(1)

    try:
        if workers <= 1 or len(todo) <= 1:
            for seed, arm in todo:
                record(seed, arm, lambda s=seed, a=arm: play_arm(config, s, a, run_dir))
        else:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(var, "1")
            methods = multiprocessing.get_all_start_methods()
            # Never "fork": a forked copy of a process with threads or a Brian2 runtime can hang.
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods
                                              else "spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                pending = {pool.submit(_worker, config, s, a, str(run_dir)): (s, a)
                           for s, a in todo}
                try:
                    while pending:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            record(*pending.pop(fut), fut.result)
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
    finally:
        if bar is not None:
            bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} session(s) failed ({'; '.join(failed)}); the others "
                           f"are kept in {str(run_dir)!r}: run the same command to retry")
    summary = summarize(results, config)
    (run_dir / "grip.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    plot(summary, run_dir / "grip.png")
    return summary


def load_grip_toml(path: str | Path) -> dict[str, Any]:
    """GripConfig fields from a TOML file: its ``[culture]`` table (the player's options) and
    ``[game]`` table, as experiment configs write them, and an optional ``[grip]`` table
    (seeds: a count or a list, first_seed, minutes, edit, condition, dose). Other tables (an
    ``[experiment]``) are ignored, so an experiment preset serves as a grip config as it is."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no such config file: {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    fields: dict[str, Any] = {}
    for table, name in (("culture", "player_options"), ("game", "game")):
        if table in data:
            if not isinstance(data[table], dict):
                raise ValueError(f"{path}: [{table}] must be a table")
            fields[name] = data[table]
    grip = data.get("grip", {})
    if not isinstance(grip, dict):
        raise ValueError(f"{path}: [grip] must be a table")
    allowed = ("seeds", "first_seed", "minutes", "edit", "condition", "dose")
    unknown = sorted(set(grip) - set(allowed))
    if unknown:
        raise ValueError(f"{path}: unknown [grip] key(s) {unknown}; allowed: {list(allowed)}")
    first = grip.get("first_seed", 0)
    check_int(f"{path}: grip", "first_seed", first, lo=0)
    if "seeds" in grip:
        seeds = grip["seeds"]
        if isinstance(seeds, list):
            fields["seeds"] = tuple(seeds)
        else:
            check_int(f"{path}: grip", "seeds", seeds, lo=1)
            fields["seeds"] = tuple(range(first, first + seeds))
    elif "first_seed" in grip:
        fields["seeds"] = tuple(range(first, first + 8))
    for key in ("minutes", "edit", "condition", "dose"):
        if key in grip:
            fields[key] = grip[key]
    return fields
