"""The bundled recipes. A regular install ships this folder as the package ``i2i.recipes`` (``package-dir`` in
pyproject.toml), so `i2i train cyclegan` and `i2i recipes` find the files outside a checkout too
(``i2i.recipe.loader.bundled_recipes_dir``). There is no code here."""
