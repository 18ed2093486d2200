"""Data files shipped with SpecChat (icons, desktop entry, prompt sets, screenshots).

A package only so that importlib.resources finds it the same way from a checkout, an
installed wheel and a frozen bundle; read it through core.resource_files, not by path.
"""
