"""The built-in recipes, installed as package data (``t2i_stages.recipes``).

A recipe names one with ``extends: builtin:dmgan.yaml`` (``builtin:coco/grgan.yaml`` for a
subfolder), and the commands take ``builtin:NAME`` wherever they take a recipe file, so a
plugin package's recipes extend them portably (``t2i_stages.recipe.sources``).
"""
