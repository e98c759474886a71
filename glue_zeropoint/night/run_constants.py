"""Constants shared by the night's modules (no imports, so no cycles)."""

#: colour used for each band's colour term (when the catalog has both bands)
DEFAULT_COLOURS = {"U": "U-B", "B": "B-V", "V": "B-V", "R": "V-R", "I": "V-I",
                   "u": "u-g", "g": "g-r", "r": "g-r", "i": "r-i", "z": "i-z"}
