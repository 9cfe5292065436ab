"""Builds the one C part of FastLIMS: the procedure controller the virtual bench runs in its
co-simulation step loop (``fastlims/procedures/controller.c``, loaded with ctypes, never imported
as a module). Everything else about the package is in pyproject.toml."""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fastlims.procedures._controller",
            sources=["src/fastlims/procedures/controller.c"],
            extra_compile_args=["-O2", "-std=c99"],
            libraries=[] if sys.platform == "win32" else ["m"],
        )
    ]
)
