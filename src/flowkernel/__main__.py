"""``python -m flowkernel``: the same as the ``flowkernel`` command."""

from .cli import main

__all__ = ()

if __name__ == "__main__":
    main()
