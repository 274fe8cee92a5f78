"""The environment of a child process that runs Keras on JAX."""

# XLA's CPU backend at optimisation level 0 compiles the small programs of
# the tests about twice as fast; the numbers stay within float32 rounding.
_FAST_COMPILE = "--xla_backend_optimization_level=0"


def jax_environment(env):
    """A copy of `env` that selects JAX and compiles quickly on CPU.

    Args:
        env: dict. The parent environment, usually `os.environ`.

    Returns:
        A new dict with `KERAS_BACKEND=jax`, `JAX_PLATFORMS=cpu` (the
        default unless set) and the fast-compile flag added to `XLA_FLAGS`.
    """
    env = dict(env)
    env["KERAS_BACKEND"] = "jax"
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    flags = env.get("XLA_FLAGS", "")
    if _FAST_COMPILE not in flags:
        env["XLA_FLAGS"] = f"{flags} {_FAST_COMPILE}".strip()
    return env
