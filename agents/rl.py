"""Deep-RL players: stable-baselines3's DQN, A2C and PPO learning online in DishBrain Pong.

The baselines of Khajehnejad et al. 2025 ("Biological neurons compete with deep reinforcement
learning in sample efficiency in a simulated gameworld", Cyborg and Bionic Systems 6:0336,
arXiv 2405.16946): each algorithm plays the same ``DishBrain/Pong-v0`` as the cultures and learns
while it plays, for exactly the game time of the session (20 min = 120,000 steps of 10 ms), from
one of three input designs (``dishbrain.observations``: "image", "positions", "stim"). It learns
from the game's reward (+1 hit, -1 miss); the cultures get stimulation instead.

    from agents.rl import make_dqn
    from dishbrain.session import play_session
    agent = make_dqn(seed=0, obs="positions")
    play_session(agent, log_path="runs/dqn.jsonl", minutes=20, seed=0,
                 agent_config=agent.config_dict)

``SB3Agent.play`` hands the env it is given (already wrapped in the session log) to
``model.learn``, so the same events are logged and the same metrics apply as for every other
player. ``act`` is ``model.predict``, for playing a trained model without learning
(``learn_online=False``).

torch and stable-baselines3 (the ``rl`` extra) are imported only when a player is built, so
importing ``agents`` or asking ``dishbrain.player`` for another player never imports torch.

## Hyperparameters
All settings are in ``HYPERPARAMETERS`` below (one dict per algorithm), started from the tuned
entries of rl-baselines3-zoo (github.com/DLR-RM/rl-baselines3-zoo, ``hyperparams/*.yml``) for
small discrete-action tasks, and adapted to this game where its time scale demands it. Each
adaptation is commented at the value. The common one is the discount:

Discount factor gamma = 0.995 for all three (the zoo uses 0.99-0.999 for these tasks). A step is
10 ms; the ball takes 295 steps to cross the court and the paddle ~70 steps to cross its travel,
so a move pays off (hit or miss) up to ~300 steps later. gamma = 0.99 (horizon 1/(1 - gamma) =
100 steps) discounts a reward 300 steps away to 0.05; 0.995 (horizon 200 steps = 2 s) keeps 0.22
of it and 0.61 at 100 steps, while remaining short enough that one rally's outcome does not
blur into the next (rallies are >= 7 s apart after a miss).
"""

from __future__ import annotations

import copy
import importlib
import inspect
from typing import Any

import gymnasium as gym
import numpy as np

from dishbrain.player import Agent

RL_EXTRA_HINT = "the RL players need the 'rl' extra: pip install -e '.[rl]'"

#: The discount factor for all algorithms: see the module docstring.
GAMMA = 0.995

HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    # rl-baselines3-zoo hyperparams/dqn.yml, "Acrobot-v1" (tuned; the same as "LunarLander-v2").
    "dqn": {
        "learning_rate": 6.3e-4,
        "batch_size": 128,
        # zoo 50,000. 100,000 steps = 16.7 min of game: most of a session, and bounded, so that
        # long sample-efficiency runs (e.g. 200 min) do not grow memory (~2-6 MB for vectors).
        "buffer_size": 100_000,
        # zoo 0. 1,000 steps (10 s of game) so the first updates see more than one serve.
        "learning_starts": 1_000,
        "gamma": GAMMA,  # zoo 0.99; see the module docstring
        "train_freq": 4,
        # zoo -1 (one gradient step per env step). Consecutive 10 ms steps are nearly the same
        # state, so one step per 4 (the Atari setting) loses little and is 4x cheaper.
        "gradient_steps": 1,
        # zoo 250 env steps = 250 gradient steps there; 1,000 env steps keeps 250 gradient steps
        # between target-network updates with one gradient step per 4 env steps.
        "target_update_interval": 1_000,
        # epsilon falls linearly from 1 to exploration_final_eps over exploration_steps. The zoo
        # sets exploration_fraction 0.12 of the training budget; here 0.12 of one session =
        # 14,400 steps (2.4 game min), counted in steps rather than as a fraction of learn's
        # budget, so that a longer run (a sample-efficiency curve) begins exactly as a 20-min
        # session does. (Replaces SB3's exploration_fraction; None restores it.)
        "exploration_steps": 14_400,
        "exploration_final_eps": 0.1,
        "policy_kwargs": {"net_arch": [256, 256]},
    },
    # rl-baselines3-zoo hyperparams/a2c.yml, "LunarLander-v2" (n_envs 8, n_steps 5,
    # gamma 0.995, learning_rate lin_0.00083, ent_coef 1e-5); SB3 defaults otherwise.
    "a2c": {
        # One env here (one game, played online) instead of the zoo's 8: 8 x 5 = 40 steps per
        # update keeps the zoo's batch (0.4 s of game per update).
        "n_steps": 40,
        "gamma": GAMMA,
        # zoo decays linearly to 0 at the end of training; constant here, since a session's end
        # is not the end of learning (sessions may follow).
        "learning_rate": 8.3e-4,
        "ent_coef": 1e-5,
    },
    # rl-baselines3-zoo hyperparams/ppo.yml, "LunarLander-v2".
    "ppo": {
        # zoo: 16 envs x 1024 steps. One env here: 1024 steps (10 s of game) per update,
        # 117 updates in a 20-min session.
        "n_steps": 1024,
        "batch_size": 64,
        "gae_lambda": 0.98,
        "gamma": GAMMA,  # zoo 0.999; see the module docstring
        "n_epochs": 4,
        "ent_coef": 0.01,
    },
}

#: Changes for the image input (on top of HYPERPARAMETERS), after the zoo's "atari" entries:
#: NatureCNN features with SB3's default heads (no 256 x 256 MLP on top), and bounded replay
#: memory. A 1 x 40 x 40 uint8 observation is 1.6 kB; 50,000 transitions in the memory-saving
#: buffer (each observation stored once) take ~80 MB (x2 with ImageObservation(frames=2)).
IMAGE_OVERRIDES: dict[str, dict[str, Any]] = {
    "dqn": {
        "policy_kwargs": {},
        "buffer_size": 50_000,
        "optimize_memory_usage": True,
        # required by optimize_memory_usage; the game only ends at the session's end.
        "replay_buffer_kwargs": {"handle_timeout_termination": False},
    },
}

#: Hyperparameters of the players that SB3's constructors do not take, by algorithm.
_PLAYER_HYPERPARAMETERS = {"dqn": {"exploration_steps"}, "a2c": set(), "ppo": set()}

#: Settings SB3Agent owns (not hyperparameters).
_RESERVED = {"policy", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"}


def _sb3():
    """The stable_baselines3 and torch modules, or an ImportError with the install hint."""
    try:
        sb3 = importlib.import_module("stable_baselines3")
        torch = importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(RL_EXTRA_HINT) from exc
    return sb3, torch


def _algorithm_class(algorithm: str):
    sb3, _ = _sb3()
    return {"dqn": sb3.DQN, "a2c": sb3.A2C, "ppo": sb3.PPO}[algorithm]


def hyperparameters(algorithm: str, obs: str = "positions") -> dict[str, Any]:
    """The default hyperparameters of `algorithm` for the input design `obs` (a copy)."""
    if algorithm not in HYPERPARAMETERS:
        raise ValueError(f"unknown algorithm {algorithm!r}; allowed: {', '.join(HYPERPARAMETERS)}")
    params = copy.deepcopy(HYPERPARAMETERS[algorithm])
    if obs == "image":
        params.update(copy.deepcopy(IMAGE_OVERRIDES.get(algorithm, {})))
    return params


class StepsLinearSchedule:
    """Linear from `start` to `end` over the first `steps` env steps of the model's life.

    SB3 evaluates schedules on ``progress_remaining = 1 - num_timesteps / total`` of the current
    ``learn`` call, where `total` is the model's step count at that call's end; this turns it
    back into steps.
    """

    def __init__(self, start: float, end: float, steps: int, total: int):
        self.start, self.end, self.steps, self.total = start, end, steps, total

    def __call__(self, progress_remaining: float) -> float:
        done = (1.0 - progress_remaining) * self.total
        fraction = min(1.0, done / self.steps) if self.steps > 0 else 1.0
        return self.start + fraction * (self.end - self.start)


class OneSession(gym.Wrapper):
    """Keeps SB3's automatic reset at the session's end from starting a new game in the log.

    SB3's vectorised env resets the game as soon as it truncates; that reset would start a new
    game inside the same session log. After the first reset, resets return the last observation
    instead, and the game is left as it ended.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.started = False
        self.steps = 0
        self._last: tuple[Any, dict] | None = None

    def reset(self, **kwargs):
        if self.started:
            return self._last
        self.started = True
        self._last = self.env.reset(**kwargs)
        return self._last

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self._last = (obs, info)
        return obs, reward, terminated, truncated, info


class SB3Agent(Agent):
    """A stable-baselines3 algorithm as a DishBrain player, learning online while it plays.

    Arguments:
        algorithm: "dqn", "a2c" or "ppo".
        obs: the input design, "image", "positions" or "stim"
            (``dishbrain.observations.INPUT_DESIGNS``).
        seed: seeds the network's initialisation and the exploration (None: unseeded). The
            seed of the first session played, if given, replaces it (the model is built then).
        obs_options: options of the input-design wrapper (e.g. ``{"velocity": True}``).
        learn_online: True: ``play`` learns (``model.learn``) for the session's steps. False:
            ``play`` acts with the current model (greedy) and does not learn.
        device: torch device (default "cpu": small networks run faster there, one step at a time).
        torch_threads: torch CPU threads (default 1, so parallel sessions do not contend);
            None leaves torch's setting alone.
        **overrides: hyperparameters that replace those of ``HYPERPARAMETERS`` (any keyword of
            the SB3 algorithm's constructor).

    The model is built at the first ``play`` (or ``act``) and kept: a second session continues
    learning where the first ended, as a culture carries its state from session to session.
    """

    def __init__(self, algorithm: str, obs: str = "positions", seed: int | None = 0, *,
                 obs_options: dict[str, Any] | None = None, learn_online: bool = True,
                 device: str = "cpu", torch_threads: int | None = 1, **overrides: Any):
        from dishbrain.observations import INPUT_DESIGNS

        if algorithm not in HYPERPARAMETERS:
            raise ValueError(f"unknown algorithm {algorithm!r}; "
                             f"allowed: {', '.join(HYPERPARAMETERS)}")
        if obs not in INPUT_DESIGNS:
            raise ValueError(f"unknown input design obs={obs!r}; "
                             f"allowed: {', '.join(INPUT_DESIGNS)}")
        if seed is not None and not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
        if torch_threads is not None and not (isinstance(torch_threads, int)
                                              and torch_threads >= 1):
            raise ValueError(f"torch_threads must be an integer >= 1 or None, "
                             f"got {torch_threads!r}")
        self._cls = _algorithm_class(algorithm)  # raises the install hint without the extra
        allowed = (set(inspect.signature(self._cls.__init__).parameters) - _RESERVED - {"self"}
                   | _PLAYER_HYPERPARAMETERS[algorithm])
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(f"unknown {algorithm} hyperparameter(s) {unknown}; "
                             f"allowed: {', '.join(sorted(allowed))}")
        self.algorithm = algorithm
        self.obs = obs
        self.seed = None if seed is None else int(seed)
        self.obs_options = dict(obs_options or {})
        self.learn_online = bool(learn_online)
        # Learning online, SB3's model.learn steps the env itself (dishbrain.player.Agent).
        self.owns_clock = self.learn_online
        self.device = device
        self.torch_threads = torch_threads
        self.hyperparameters = hyperparameters(algorithm, obs)
        self.hyperparameters.update(overrides)
        self.policy = "CnnPolicy" if obs == "image" else "MlpPolicy"
        self.name = f"{algorithm}-{obs}"
        self.model = None
        self._act_design = None  # the input design applied by act() to raw game observations

    # -- what the log header records ------------------------------------------------------------
    @property
    def config_dict(self) -> dict[str, Any]:
        """JSON-able settings of this player, for the session log's header."""
        sb3, torch = _sb3()
        return {
            "algorithm": self.algorithm,
            "obs": self.obs,
            "obs_options": self.obs_options,
            "policy": self.policy,
            "seed": self.seed,
            "learn_online": self.learn_online,
            "device": self.device,
            "torch_threads": self.torch_threads,
            "hyperparameters": copy.deepcopy(self.hyperparameters),
            "stable_baselines3": sb3.__version__,
            "torch": torch.__version__,
        }

    # -- the model ------------------------------------------------------------------------------
    def _wrap(self, env):
        from dishbrain.observations import INPUT_DESIGNS

        return INPUT_DESIGNS[self.obs](env, **self.obs_options)

    def _set_threads(self) -> None:
        if self.torch_threads is not None:
            _, torch = _sb3()
            torch.set_num_threads(self.torch_threads)

    def _build(self, env) -> None:
        self._set_threads()
        params = copy.deepcopy(self.hyperparameters)
        for name in _PLAYER_HYPERPARAMETERS[self.algorithm]:
            params.pop(name, None)
        self.model = self._cls(self.policy, env, seed=self.seed, device=self.device, verbose=0,
                               **params)

    def _schedule_exploration(self, n_steps: int) -> None:
        """DQN's epsilon over exploration_steps of the model's life (see HYPERPARAMETERS)."""
        steps = self.hyperparameters.get("exploration_steps")
        if self.algorithm == "dqn" and steps is not None:
            self.model.exploration_schedule = StepsLinearSchedule(
                self.model.exploration_initial_eps, self.model.exploration_final_eps,
                int(steps), self.model.num_timesteps + n_steps)

    def reset(self, seed: int | None = None) -> None:
        """A new session: `seed` seeds the next model built (and the game, via ``play``)."""
        if seed is not None and self.model is None:
            self.seed = int(seed)
        if self._act_design is not None and hasattr(self._act_design, "clear"):
            self._act_design.clear()

    def play(self, env, n_steps: int, seed: int | None = None) -> int:
        """Learn online for `n_steps` steps of `env` (or just play, with ``learn_online=False``)."""
        if not self.learn_online:
            self.reset()
            return super().play(env, n_steps, seed)
        _sb3()  # the install hint, if the extra is missing
        from stable_baselines3.common.callbacks import BaseCallback

        session = OneSession(env)
        wrapped = self._wrap(session)
        self._set_threads()
        if self.model is None:
            if seed is not None:
                self.seed = int(seed)
            self._build(wrapped)  # seeds torch, numpy and the env's first reset with self.seed
        else:
            self.model.set_env(wrapped, force_reset=True)
            if seed is not None:
                self.model.get_env().seed(seed)
        start = self.model.num_timesteps
        self._schedule_exploration(n_steps)

        class StopAtSessionEnd(BaseCallback):
            def _on_step(self) -> bool:
                return self.num_timesteps - start < n_steps

        self.model.learn(total_timesteps=n_steps, callback=StopAtSessionEnd(),
                         reset_num_timesteps=False, progress_bar=False)
        return session.steps

    def act(self, obs) -> Any:
        """The model's greedy action for a game observation (raw or already transformed)."""
        if self.model is None:
            from envs.pong import PongEnv

            self._build(self._wrap(PongEnv()))
        obs = np.asarray(obs)
        if obs.shape != self.model.observation_space.shape:
            if self._act_design is None:
                from envs.pong import PongEnv

                self._act_design = self._wrap(PongEnv())
            obs = self._act_design.observation(obs)
        action, _ = self.model.predict(obs, deterministic=True)
        return int(action)

    def save(self, path) -> None:
        """Save the trained model (SB3's zip format)."""
        if self.model is None:
            raise ValueError(f"{self.name} has no model to save: play a session first")
        self.model.save(path)

    def load(self, path) -> None:
        """Load a model saved by ``save`` (of the same algorithm and input design)."""
        self._set_threads()
        self.model = self._cls.load(path, device=self.device)


def make_dqn(seed: int | None = 0, obs: str = "positions", **overrides: Any) -> SB3Agent:
    """A DQN player on input design `obs`; keywords override ``HYPERPARAMETERS["dqn"]``."""
    return SB3Agent("dqn", obs, seed, **overrides)


def make_a2c(seed: int | None = 0, obs: str = "positions", **overrides: Any) -> SB3Agent:
    """An A2C player on input design `obs`; keywords override ``HYPERPARAMETERS["a2c"]``."""
    return SB3Agent("a2c", obs, seed, **overrides)


def make_ppo(seed: int | None = 0, obs: str = "positions", **overrides: Any) -> SB3Agent:
    """A PPO player on input design `obs`; keywords override ``HYPERPARAMETERS["ppo"]``."""
    return SB3Agent("ppo", obs, seed, **overrides)
