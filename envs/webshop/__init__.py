"""WebShop (Yao et al. 2022) as a text environment that installs with the package and runs offline."""
