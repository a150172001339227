"""How the app writes each schedule quantity, in Ho et al.'s notation or seed 000's (DESIGN.md table).

Names are HTML (Qt labels and pyqtgraph titles render it); ``plain`` gives text for table headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    key: str  # the column name in core.schedules.TABLE_COLUMNS
    ho: str  # Ho et al. (2020)
    seed000: str  # seed 000, where α^S = √α, β^S = √β, ᾱ^S = √ᾱ, β̄^S = √(1 − ᾱ)
    meaning: str  # what it is, with its formula, for tooltips

    def name(self, notation: str) -> str:
        return self.seed000 if notation == "seed000" else self.ho


QUANTITIES: dict[str, Quantity] = {
    q.key: q
    for q in (
        Quantity("beta", "β<sub>t</sub>", "(β<sup>S</sup><sub>t</sub>)²",
                 "per-step noise variance: q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t I)"),
        Quantity("alpha", "α<sub>t</sub>", "(α<sup>S</sup><sub>t</sub>)²",
                 "per-step signal kept: α_t = 1 − β_t"),
        Quantity("alpha_bar", "ᾱ<sub>t</sub>", "(ᾱ<sup>S</sup><sub>t</sub>)²",
                 "signal variance left after t steps: ᾱ_t = Π_{s≤t} α_s"),
        Quantity("sqrt_alpha_bar", "√ᾱ<sub>t</sub>", "ᾱ<sup>S</sup><sub>t</sub>",
                 "scale of x_0 in x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε"),
        Quantity("sqrt_one_minus_alpha_bar", "√(1 − ᾱ<sub>t</sub>)", "β̄<sup>S</sup><sub>t</sub>",
                 "scale of ε in x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε"),
        Quantity("log_snr", "log SNR<sub>t</sub>", "log SNR<sub>t</sub>",
                 "signal-to-noise ratio, natural log: log(ᾱ_t / (1 − ᾱ_t))"),
    )
}

NOTATION_NAMES = {"ho": "Ho et al. (2020)", "seed000": "Seed 000 (α² + β² = 1)"}


SUBSCRIPTS = str.maketrans("0123456789+−-=()aehklmnopstx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕₖₗₘₙₒₚₛₜₓ")
SUPERSCRIPTS = str.maketrans("0123456789+−-=()nSi", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿˢⁱ")


def _script(text: str, table: dict[int, str], mark: str) -> str:
    """``text`` in Unicode sub- or superscript letters, or after ``mark`` where one has none."""
    return text.translate(table) if all(ord(c) in table for c in text) else f"{mark}{text}"


def plain(html: str) -> str:
    """Rich-text symbols for places that show plain text (table headers, CSV): 'β<sub>t</sub>' →
    'βₜ', '(β<sup>S</sup><sub>t</sub>)²' → '(βˢₜ)²'; a script with no Unicode letters keeps '_' or '^'."""
    text = re.sub(r"<sub>(.*?)</sub>", lambda m: _script(m.group(1), SUBSCRIPTS, "_"), html)
    return re.sub(r"<sup>(.*?)</sup>", lambda m: _script(m.group(1), SUPERSCRIPTS, "^"), text)
