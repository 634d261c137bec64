"""`rlpost` command line.

    rlpost recipe list
    rlpost recipe run NAME [--preset quick|smoke|paper] [--config FILE.yaml] [--section.key VALUE ...]
    rlpost recipe show NAME [--preset P] [...]    print the resolved config as YAML
    rlpost env list
    rlpost model path [NAME]                      resolve (and convert once) a model

User errors print one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from types import ModuleType

from rlpost.errors import RlpostError

USAGE = __doc__.split("\n\n")[1]


def _recipe_module(name: str) -> ModuleType:
    from rlpost.recipes import RECIPES

    if name not in RECIPES:
        close = difflib.get_close_matches(name, list(RECIPES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RlpostError(f"unknown recipe {name!r}{hint} (rlpost recipe list shows them all)")
    return importlib.import_module(RECIPES[name])


def _summary(module_name: str) -> str:
    module = importlib.import_module(module_name)
    return (module.__doc__ or "").strip().splitlines()[0]


def _build_config(module: ModuleType, args: list[str]):
    from rlpost.config import apply_overrides, load_yaml

    preset, config_file, rest = "quick", None, []
    i = 0
    while i < len(args):
        if args[i] in ("--preset", "--config") and i + 1 >= len(args):
            raise RlpostError(f"{args[i]} needs a value")
        if args[i] == "--preset":
            preset, i = args[i + 1], i + 2
        elif args[i].startswith("--preset="):
            preset, i = args[i].split("=", 1)[1], i + 1
        elif args[i] == "--config":
            config_file, i = args[i + 1], i + 2
        elif args[i].startswith("--config="):
            config_file, i = args[i].split("=", 1)[1], i + 1
        else:
            rest.append(args[i])
            i += 1
    if preset not in module.PRESETS:
        raise RlpostError(f"unknown preset {preset!r}; choose from {', '.join(module.PRESETS)}")
    cfg = module.PRESETS[preset]()
    if config_file:
        load_yaml(cfg, config_file)
    return apply_overrides(cfg, rest)


def _recipe(args: list[str]) -> int:
    from rlpost.recipes import RECIPES

    if not args or args[0] not in ("list", "run", "show"):
        raise RlpostError("usage: rlpost recipe list | rlpost recipe run NAME [options]")
    if args[0] == "list":
        width = max(map(len, RECIPES))
        for name, module_name in RECIPES.items():
            print(f"{name:<{width}}  {_summary(module_name)}")
        return 0
    if len(args) < 2:
        raise RlpostError(f"usage: rlpost recipe {args[0]} NAME [options]")
    module = _recipe_module(args[1])
    if "--help" in args or "-h" in args:
        from rlpost.config import help_text

        print(f"rlpost recipe run {args[1]} [--preset {'|'.join(module.PRESETS)}] "
              "[--config FILE.yaml] [options]\n")
        print((module.__doc__ or "").strip() + "\n\noptions:")
        # the values shown are those of the preset, config file and options given with --help
        cfg = _build_config(module, [a for a in args[2:] if a not in ("--help", "-h")])
        print("(defaults: the chosen preset, default quick, with any options given)")
        print(help_text(cfg))
        return 0
    cfg = _build_config(module, args[2:])
    if args[0] == "show":
        module.validate(cfg)  # what run would refuse, show refuses too
        import yaml

        from rlpost.config import to_dict

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    try:
        result = module.main(cfg)
    except KeyboardInterrupt:
        hint = (f"resume with: rlpost recipe run {args[1]} --run.dir <the run dir>"
                if getattr(module, "RESUMABLE", True) else "this recipe does not resume yet")
        print(f"\ninterrupted; {hint}", file=sys.stderr)
        return 130
    if result:
        print("final eval: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(result.items())))
    return 0


def _quiet_libraries() -> None:
    """Keep the console to rlpost's own lines: no library progress bars or info logs."""
    import os
    import warnings

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _quiet_libraries()
    try:
        if not args or args[0] in ("-h", "--help"):
            print(USAGE)
            return 0
        if args[0] == "recipe":
            return _recipe(args[1:])
        if args[0] == "env" and args[1:] == ["list"]:
            from rlpost.env import registered

            print("\n".join(registered()))
            return 0
        if args[0] == "model" and len(args) in (2, 3) and args[1] == "path":
            from rlpost.policy import DEFAULT_MODEL, resolve_model

            print(resolve_model(args[2] if len(args) == 3 else DEFAULT_MODEL))
            return 0
        raise RlpostError(f"unknown command {' '.join(args[:2])!r}\n{USAGE}")
    except RlpostError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
