"""python -m specgrad_plugin.pretrained: list the models shipped with the package."""

from specgrad_plugin.pretrained import describe

if __name__ == "__main__":
    print("\n".join(describe()))
