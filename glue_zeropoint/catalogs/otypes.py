"""SIMBAD object types: which mark variables and which are not (single) stars.

One classification for the whole package: :mod:`.normalize` uses it for the ``variable`` and
``nonstellar`` flags of a normalised SIMBAD table, :mod:`.identify` for identified stars. The
zero-point fit leaves both kinds out.
"""

__all__ = ["classify_otype", "is_variable", "is_nonstellar", "VARIABLE_OTYPES",
           "NONSTELLAR_OTYPES"]

# SIMBAD object types: the short codes (what the TAP ``basic.otype`` column holds), in the
# hierarchy of SIMBAD 4 before 2023 and in the revised one of 2023 (which kept most short codes
# and moved some classes, e.g. RR* under HB*, Mi* under AB*), and the long labels of both
# (``otype_txt``, local files). Candidates are the code with '?' (``RR?``, ``V*?``, ``s?r``) or
# the long label with ``_Candidate`` / a trailing '?'.

_VARIABLE_SHORT = {
    # V* and its children
    "V*", "V*?", "Ir*", "Or*", "RI*", "Er*", "Fl*", "FU*", "RC*", "RC?", "Ro*", "a2*", "Psr",
    "BY*", "RS*", "Pu*", "RR*", "Ce*", "cC*", "dS*", "RV*", "WV*", "bC*", "gD*", "SX*", "LP*",
    "Mi*", "sr*", "SR*", "SN*", "ZZ*",
    # variable by definition, elsewhere in the tree: eclipsing, ellipsoidal, cataclysmic,
    # symbiotic and X-ray binaries, young stars of T Tau / Herbig Ae/Be type
    "EB*", "Al*", "bL*", "WU*", "EP*", "El*", "CV*", "DQ*", "AM*", "NL*", "No*", "DN*",
    "Sy*", "XB*", "LXB", "HXB", "TT*", "Ae*",
}
_VARIABLE_CANDIDATES = {
    "RR?", "Ce?", "cC?", "WV?", "RV?", "dS?", "gD?", "SX?", "bC?", "Pu?", "LP?", "Mi?", "sv?",
    "sr?", "EB?", "El?", "CV?", "No?", "DN?", "Sy?", "XB?", "LX?", "HX?", "BY?", "RS?", "Ro?",
    "a2?", "Ir?", "Or?", "Er?", "FU?", "Fl?", "TT?", "Ae?", "SN?", "ZZ?",
}
_VARIABLE_LONG = {
    # before 2023
    "Variable*", "Irregular_V*", "Orion_V*", "Rapid_Irreg_V*", "Eruptive*", "Flare*", "FUOr",
    "Erupt*RCrB", "RCrB_Candidate", "RotV*", "RotV*alf2CVn", "Pulsar", "BYDra", "RSCVn",
    "PulsV*", "RRLyr", "Cepheid", "PulsV*delSct", "PulsV*RVTau", "PulsV*WVir", "PulsV*bCep",
    "deltaCep", "gammaDor", "pulsV*SX", "LPV*", "Mira", "semi-regV*", "SN", "pulsWD*",
    "EB*", "EB*Algol", "EB*betLyr", "EB*WUMa", "EB*Planet", "EllipVar", "Symbiotic*",
    "CataclyV*", "DQHer", "AMHer", "Nova-like", "Nova", "DwarfNova", "XB", "LMXB", "HMXB",
    "TTau*", "Ae*", "V*?",
    # 2023 labels
    "IrregularV*", "OrionV*", "EruptiveV*", "RCrBV*", "alf2CVnV*", "BYDraV*", "RSCVnV*",
    "RRLyrae", "ClassicalCep", "delSctV*", "RVTauV*", "Type2Cep", "betaCepV*", "gammaDorV*",
    "SXPheV*", "LongPeriodV*", "EclBin", "XrayBin", "LowMassXBin",
    "HighMassXBin", "Supernova", "TTauri*", "YSO_TTau", "HerbigAe/Be", "PulsWD*", "ZZCet",
    # labels seen in older tools and files
    "delSct", "betCep", "SXPhe", "WVir", "FlareStar", "Cataclysmic", "Eclipsing", "Ellipsoidal",
}
#: SIMBAD object types of known or suspected variables (short codes and long labels).
VARIABLE_OTYPES = frozenset(_VARIABLE_SHORT | _VARIABLE_CANDIDATES | _VARIABLE_LONG)

_NONSTELLAR_SHORT = {
    # galaxies and their parts, AGN, quasars, lensed images
    "G", "PoG", "GiC", "BiC", "GiG", "GiP", "HzG", "rG", "H2G", "LSB", "EmG", "SBG", "bCG",
    "LeI", "LeG", "LeQ", "AGN", "LIN", "SyG", "Sy1", "Sy2", "Bla", "BLL", "OVV", "QSO",
    "ALS", "LyA", "DLA", "mAL", "LLS", "BAL", "gLe", "gLS", "IG", "PaG", "GrG", "CGG", "ClG",
    "SCG", "PCG", "vid", "reg", "mul",
    # candidates of those
    "G?", "AG?", "Q?", "Bz?", "BL?", "SC?", "C?G", "Gr?", "Le?", "LS?", "LI?", "PCG?",
    # star clusters and associations
    "Cl*", "GlC", "OpC", "As*", "St*", "MGr", "C?*", "Gl?", "As?",
    # interstellar matter and nebulae
    "ISM", "PoC", "PN", "PN?", "CGb", "bub", "EmO", "Cld", "GNe", "BNe", "DNe", "RNe", "MoC",
    "glb", "cor", "SFR", "HVC", "HII", "sh", "SR?", "SNR", "cir", "of?", "out", "HH",
}
_NONSTELLAR_LONG = {
    # before 2023
    "Galaxy", "PartofG", "GinCl", "BClG", "GinGroup", "GinPair", "High_z_G", "RadioG",
    "HII_G", "LSB_G", "EmG", "StarburstG", "BlueCompG", "LensedImage", "LensedG", "LensedQ",
    "AGN", "LINER", "Seyfert", "Seyfert_1", "Seyfert_2", "Blazar", "BLLac", "OVV", "QSO",
    "AbsLineSystem", "Ly-alpha_ALS", "DLy-alpha_ALS", "metal_ALS", "Ly-limit_ALS",
    "Broad_ALS", "GravLens", "GravLensSystem", "IG", "PairG", "GroupG", "Compact_Gr_G",
    "ClG", "SuperClG", "Void", "Region", "multiple_object", "AGN_Candidate",
    "QSO_Candidate", "Blazar_Candidate", "BLLac_Candidate", "Possible_G", "Possible_SClG",
    "Possible_ClG", "Possible_GrG", "Cl*", "GlCl", "OpCl", "Assoc*", "Stream*", "MouvGroup",
    "Cl*?", "GlCl?", "ISM", "PartofCloud", "PN?", "ComGlob", "Bubble", "EmObj", "Cloud",
    "GalNeb", "BrNeb", "DkNeb", "RfNeb", "MolCld", "Globule", "denseCore", "SFregion",
    "HVCld", "HII", "PN", "HIshell", "SNR?", "SNR", "Circumstellar", "outflow?", "Outflow",
    "HH",
    # 2023 labels
    "GtowardsCl", "BrightestCG", "GtowardsGroup", "HighZG", "HIIG",
    "LowSurfBrghtG", "EmissionG", "BlueCompactG", "Seyfert1", "Seyfert2",
    "InteractingG", "CompactGroupG", "SuperClusterG", "Cluster*", "GlobCluster",
    "OpenCluster", "Association", "Stream", "MovingGroup", "PlanetaryNeb", "SNRemnant",
    "HIIReg", "DarkNeb", "RefNeb", "StarFormingReg", "HerbigHaroObj", "HIShell",
    # labels seen in older tools and files
    "Nebula",
}
#: SIMBAD object types that are not (single) stars: galaxies, AGN and QSOs, clusters and
#: associations of stars, nebulae and interstellar matter.
NONSTELLAR_OTYPES = frozenset(_NONSTELLAR_SHORT | _NONSTELLAR_LONG)


def _base_codes(code):
    """The code and, for a candidate, the code of the confirmed class."""
    yield code
    if code.endswith("_Candidate"):
        yield code[: -len("_Candidate")]
    if code.startswith(("Candidate_", "Possible_")):
        yield code.split("_", 1)[1]
    if code.endswith("?") and len(code) > 1:
        yield code[:-1]
        if len(code) == 3:  # 'RR?' -> 'RR*'
            yield code[:2] + "*"
    if "?" in code and len(code) == 3:  # 's?r' -> 's*r'
        yield code.replace("?", "*")


def is_variable(otype):
    """True if a SIMBAD object type marks a known or suspected variable (candidates included).

    Examples
    --------
    >>> [is_variable(t) for t in ('RR*', 'RR?', 'V*?', 'EB*', 'RRLyrae', '*', 'G', '')]
    [True, True, True, True, True, False, False, False]
    """
    code = str(otype).strip()
    if not code:
        return False
    if "V*" in code:  # Variable*, PulsV*..., LongPeriodV*, V*?
        return True
    return any(c in VARIABLE_OTYPES for c in _base_codes(code))


def is_nonstellar(otype):
    """True if a SIMBAD object type is a galaxy, AGN/QSO, cluster, nebula or interstellar matter.

    Examples
    --------
    >>> [is_nonstellar(t) for t in ('G', 'QSO', 'Cl*', 'PN', 'G?', 'Galaxy', '*', 'RR*')]
    [True, True, True, True, True, True, False, False]
    """
    code = str(otype).strip()
    if not code:
        return False
    return any(c in NONSTELLAR_OTYPES for c in _base_codes(code))


def classify_otype(otype):
    """``(variable, nonstellar)`` of a SIMBAD object type."""
    return is_variable(otype), is_nonstellar(otype)
