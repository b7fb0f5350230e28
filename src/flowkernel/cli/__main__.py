"""``python -m flowkernel.cli``: the same as the ``flowkernel`` command."""

from . import main

__all__ = ()

if __name__ == "__main__":
    main()
