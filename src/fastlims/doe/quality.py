"""Measures of a design's quality, all in coded units of the varied factors.

* D-efficiency of a polynomial model: |X'X|^(1/p) / N (Atkinson & Donev), so that an orthogonal
  two-level design scores 1.0 for the main-effects model and designs of different sizes compare.
* Minimum distance between distinct runs (the maximin criterion of space-filling designs).
* For two-level designs: the generators, the defining relation, the resolution (length of its
  shortest word) and the alias chains.

The two-level structure is recovered from the design matrix itself (or parsed from the
generators a catalog entry gives), so what is reported is what the runs really are.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import pdist

from fastlims.doe.errors import DoeError
from fastlims.doe.models import DesignQuality, Model

FloatMatrix = npt.NDArray[np.float64]

#: Factor letters as in Box, Hunter & Hunter and Minitab: "I" is skipped, it names the identity.
_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
#: Above this many generators the defining relation (2^p words) is not enumerated.
_MAX_ENUMERATED_GENERATORS = 16
#: Alias chains are listed only up to this many factors (they count O(k^3) terms).
_MAX_ALIAS_FACTORS = 50
#: Above this many distinct runs the minimum distance is computed in blocks (pdist's memory is N^2/2).
_MAX_PDIST_RUNS = 4_000
#: A listed defining relation is cut after this many words.
_MAX_LISTED_WORDS = 63


def factor_letters(n_factors: int) -> list[str]:
    """Names used in words and alias chains: A, B, …, H, J, …, Z, then F26, F27, …."""
    return [_LETTERS[i] if i < len(_LETTERS) else f"F{i + 1}" for i in range(n_factors)]


def model_exponents(n_factors: int, model: Model) -> npt.NDArray[np.int64]:
    """Exponent matrix (p × k) of the model's terms; row 0 is the intercept."""
    rows: list[list[int]] = [[0] * n_factors]
    for i in range(n_factors):
        rows.append([1 if j == i else 0 for j in range(n_factors)])
    if model in ("interactions", "quadratic"):
        for i, j in itertools.combinations(range(n_factors), 2):
            rows.append([1 if m in (i, j) else 0 for m in range(n_factors)])
    if model == "quadratic":
        for i in range(n_factors):
            rows.append([2 if j == i else 0 for j in range(n_factors)])
    return np.array(rows, dtype=np.int64).reshape(len(rows), n_factors)


def term_columns(exponents: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Each term of a model of degree <= 2 as the product of two columns of [x, 1].

    Index k (one past the factors) is the column of ones, so the intercept is (k, k), a main
    effect (i, k), an interaction (i, j) and a square (i, i). Two gathers and one multiply
    build a model matrix, ~20 times faster than raising points to the exponent matrix.
    """
    k = exponents.shape[1]
    first, second = [], []
    for row in exponents:
        picks = [j for j in range(k) for _ in range(int(row[j]))] + [k, k]
        first.append(picks[0])
        second.append(picks[1])
    return np.array(first, dtype=np.intp), np.array(second, dtype=np.intp)


def expand(points: FloatMatrix, columns: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]) -> FloatMatrix:
    """Model matrix of ``points`` for the terms given by `term_columns`."""
    extended = np.hstack([points, np.ones((points.shape[0], 1))])
    return np.asarray(extended[:, columns[0]] * extended[:, columns[1]], dtype=np.float64)


def model_matrix(coded: FloatMatrix, model: Model) -> FloatMatrix:
    """The regression matrix X (N × p) of ``model`` for a coded design."""
    return expand(coded, term_columns(model_exponents(coded.shape[1], model)))


def d_efficiency(coded: FloatMatrix, model: Model = "linear") -> float:
    """|X'X|^(1/p) / N for ``model``; 0.0 when the model cannot be estimated from the design."""
    x = model_matrix(coded, model)
    n, p = x.shape
    if n < p:
        return 0.0
    information = x.T @ x  # p × p: the rank test on it stays cheap however many runs there are
    if np.linalg.matrix_rank(information, hermitian=True) < p:
        return 0.0
    sign, logdet = np.linalg.slogdet(information)
    if sign <= 0:
        return 0.0
    return float(math.exp(logdet / p) / n)


def min_pairwise_distance(coded: FloatMatrix) -> tuple[float, int]:
    """Smallest Euclidean distance between distinct runs, and how many runs repeat another."""
    distinct = np.unique(np.round(coded, 12), axis=0)
    replicated = coded.shape[0] - distinct.shape[0]
    if distinct.shape[0] < 2:
        return 0.0, replicated
    if distinct.shape[0] <= _MAX_PDIST_RUNS:
        return float(np.min(pdist(distinct))), replicated
    return _min_distance_in_blocks(distinct), replicated


def _min_distance_in_blocks(points: FloatMatrix, block: int = 512) -> float:
    """The closest pair by blocks of |a|^2 + |b|^2 - 2ab: memory O(block × N) instead of the
    N^2/2 distances pdist keeps, and BLAS speed (a k-d tree degenerates on many-factor grids)."""
    squares = np.einsum("ij,ij->i", points, points)
    best = np.inf
    for start in range(0, points.shape[0], block):
        rows = points[start : start + block]
        d2 = squares[start : start + block, None] + squares[None, :] - 2.0 * rows @ points.T
        d2[np.arange(rows.shape[0]), start + np.arange(rows.shape[0])] = np.inf
        best = min(best, float(d2.min()))
    return math.sqrt(max(best, 0.0))


def max_abs_correlation(coded: FloatMatrix) -> float:
    """Largest |Pearson r| between two factor columns: 0 for an orthogonal design."""
    spread = coded.std(axis=0)
    columns = coded[:, spread > 1e-12]
    if columns.shape[1] < 2:
        return 0.0
    r = np.asarray(np.corrcoef(columns, rowvar=False), dtype=np.float64)
    np.fill_diagonal(r, 0.0)
    return float(np.max(np.abs(r)))


@dataclass(frozen=True)
class Generator:
    """Factor ``factor`` equals ``sign`` times the product of the base factors in ``word``."""

    factor: int
    sign: int
    word: int  # bit mask over factor indices (base factors only)


@dataclass(frozen=True)
class TwoLevelStructure:
    """A regular two-level design: base factors (a full factorial) and generated factors."""

    n_factors: int
    base: tuple[int, ...]
    generators: tuple[Generator, ...]

    def column_vectors(self) -> list[tuple[int, int]]:
        """(mask over base factors, sign) of every factor's column."""
        vectors = [(1 << j, 1) for j in range(self.n_factors)]
        for g in self.generators:
            vectors[g.factor] = (g.word, g.sign)
        return vectors

    def defining_words(self) -> list[tuple[int, int]] | None:
        """Every word of the defining relation as (factor mask, sign); None if too many to list."""
        if len(self.generators) > _MAX_ENUMERATED_GENERATORS:
            return None
        words: list[tuple[int, int]] = [(0, 1)]
        for g in self.generators:
            own = (g.word | 1 << g.factor, g.sign)
            words += [(mask ^ own[0], sign * own[1]) for mask, sign in words]
        return words[1:]

    def resolution(self) -> int | None:
        """Length of the shortest defining word; None for a full factorial (no word at all)."""
        if not self.generators:
            return None
        words = self.defining_words()
        if words is not None:
            return min(mask.bit_count() for mask, _ in words)
        # Too many words to enumerate: two distinct terms of order <= 3 with the same column
        # give every word of length <= 6, which covers any design within MAX_RUNS; 7 would be
        # a lower bound.
        shortest = 7
        for terms in self._terms_by_vector(3).values():
            for (a, _), (b, _) in itertools.combinations(terms, 2):
                shortest = min(shortest, (a ^ b).bit_count())
        return shortest

    def generator_strings(self, letters: Sequence[str]) -> list[str]:
        """The generators as "D = ABC" (or "D = -ABC")."""
        return [f"{letters[g.factor]} = {'-' if g.sign < 0 else ''}{_word(g.word, letters)}" for g in self.generators]

    def defining_relation(self, letters: Sequence[str]) -> list[str]:
        """The words of the defining relation, shortest first ("ABCD", "-ABE", …)."""
        words = self.defining_words()
        if words is None:
            return []
        ordered = sorted(words, key=lambda w: (w[0].bit_count(), _word(w[0], letters)))
        return [("-" if sign < 0 else "") + _word(mask, letters) for mask, sign in ordered][:_MAX_LISTED_WORDS]

    def alias_chains(self, letters: Sequence[str]) -> list[str]:
        """Alias chains of main effects and two-factor interactions, up to three-factor terms."""
        if not self.generators or self.n_factors > _MAX_ALIAS_FACTORS:
            return []
        by_vector = self._terms_by_vector(3)
        vectors = self.column_vectors()
        chains: list[str] = []
        seen: set[frozenset[int]] = set()
        for order in (1, 2):
            for combo in itertools.combinations(range(self.n_factors), order):
                mask, sign = _term(combo, vectors)
                effect = sum(1 << j for j in combo)
                terms = by_vector[mask]
                key = frozenset(t for t, _ in terms)
                if len(terms) < 2 or key in seen:
                    continue
                seen.add(key)
                others = sorted((t for t in terms if t[0] != effect), key=lambda t: (t[0].bit_count(), t[0]))
                chains.append(
                    " = ".join(
                        [_word(effect, letters)]
                        + [("-" if s * sign < 0 else "") + _word(t, letters) for t, s in others]
                    )
                )
        return chains

    def matches(self, two_level: FloatMatrix) -> bool:
        """Whether every generated column of a ±1 matrix really is its generator's product."""
        for g in self.generators:
            product = np.prod(two_level[:, [j for j in range(self.n_factors) if g.word >> j & 1]], axis=1)
            if not np.array_equal(two_level[:, g.factor], g.sign * product):
                return False
        return True

    def _terms_by_vector(self, max_order: int) -> dict[int, list[tuple[int, int]]]:
        vectors = self.column_vectors()
        table: dict[int, list[tuple[int, int]]] = {}
        for order in range(1, max_order + 1):
            for combo in itertools.combinations(range(self.n_factors), order):
                mask, sign = _term(combo, vectors)
                table.setdefault(mask, []).append((sum(1 << j for j in combo), sign))
        return table


def _term(combo: Sequence[int], vectors: Sequence[tuple[int, int]]) -> tuple[int, int]:
    mask, sign = 0, 1
    for j in combo:
        mask ^= vectors[j][0]
        sign *= vectors[j][1]
    return mask, sign


def _word(mask: int, letters: Sequence[str]) -> str:
    names = [letters[j] for j in range(len(letters)) if mask >> j & 1]
    return ("" if all(len(n) == 1 for n in names) else "*").join(names)


def two_level_structure(two_level: FloatMatrix) -> TwoLevelStructure | None:
    """Recover base factors and generators from a ±1 matrix; None if it is not a regular design.

    Columns are taken in order; one not a (signed) product of earlier base columns becomes a
    base column. The design is regular when every product of base columns is balanced and
    every other column is such a product; Plackett–Burman designs of 12, 20, 24… runs are not.
    """
    n, k = two_level.shape
    if n == 0 or not np.all(np.abs(two_level) == 1):
        return None
    full = (1 << n) - 1
    patterns = [sum(1 << int(r) for r in np.flatnonzero(two_level[:, j] < 0)) for j in range(k)]
    span: dict[int, int] = {0: 0}  # row pattern of a product of base columns -> its factor mask
    base: list[int] = []
    generators: list[Generator] = []
    for j, pattern in enumerate(patterns):
        if pattern in span or pattern ^ full in span:
            sign = 1 if pattern in span else -1
            word = span[pattern if sign > 0 else pattern ^ full]
            if word == 0:
                return None  # a constant column is not a factor
            generators.append(Generator(j, sign, word))
            continue
        if len(span) >= 1 << 20:
            return None
        for existing, mask in list(span.items()):
            product = existing ^ pattern
            if product.bit_count() * 2 != n:
                return None  # an unbalanced product: not a regular fraction
            span[product] = mask | 1 << j
        base.append(j)
    return TwoLevelStructure(k, tuple(base), tuple(generators))


_GENERATOR = re.compile(r"^\s*([A-Z][0-9]*)\s*=\s*([+-]?)\s*([A-Z0-9*]+)\s*$")


def parse_generators(texts: Sequence[str], n_factors: int) -> TwoLevelStructure:
    """Parse generators such as "D = ABC" or "E = -ABD" over the varied factors' letters.

    Letters follow `factor_letters` in the order of the varied factors. Each generated factor
    must be the product of two or more base factors (those not generated); raises `DoeError`
    naming each bad generator.
    """
    letters = factor_letters(n_factors)
    index = {letter: i for i, letter in enumerate(letters)}
    problems: list[str] = []
    parsed: list[tuple[int, int, list[int], str]] = []
    for text in texts:
        match = _GENERATOR.match(text.upper())
        if not match:
            problems.append(f"generators: {text!r} is not of the form 'D = ABC' (or 'D = -ABC')")
            continue
        target, sign, word = match.groups()
        tokens = word.split("*") if "*" in word else re.findall(r"[A-Z][0-9]*", word)
        unknown = [t for t in [target, *tokens] if t not in index]
        if unknown:
            problems.append(
                f"generators: {text!r} uses {', '.join(unknown)}, but the {n_factors} varied factors "
                f"are {''.join(letters) if n_factors <= 25 else ', '.join(letters)}"
            )
            continue
        members = sorted({index[t] for t in tokens})
        if len(members) != len(tokens) or len(members) < 2:
            problems.append(f"generators: {text!r} must multiply two or more different factors")
            continue
        parsed.append((index[target], -1 if sign == "-" else 1, members, text))
    targets = [t for t, _, _, _ in parsed]
    for target in sorted({t for t in targets if targets.count(t) > 1}):
        problems.append(f"generators: factor {letters[target]} is generated more than once")
    for target, _, members, text in parsed:
        used = [letters[m] for m in members if m in targets]
        if used:
            problems.append(f"generators: {text!r} uses generated factor(s) {', '.join(used)}; use base factors")
        if target in members:
            problems.append(f"generators: {text!r} defines a factor by itself")
    if problems:
        raise DoeError(problems)
    base = tuple(j for j in range(n_factors) if j not in targets)
    generators = tuple(Generator(t, s, sum(1 << m for m in members)) for t, s, members, _ in parsed)
    structure = TwoLevelStructure(n_factors, base, generators)
    res = structure.resolution()
    if res is not None and res < 3:
        raise DoeError(
            [
                f"generators: main effects are aliased with each other (resolution {res}); "
                "give each generated factor a different product"
            ]
        )
    return structure


def assess(
    coded: FloatMatrix,
    names: Sequence[str],
    *,
    two_level: bool,
    structure: TwoLevelStructure | None = None,
) -> DesignQuality:
    """Measure a coded design; for a two-level design also its aliasing.

    ``structure`` (from the generators used to build the design) is reported when it still
    holds for the runs; otherwise, and when absent, the structure is recovered from the runs.
    Centre points are left out of the two-level analysis.
    """
    distance, replicated = min_pairwise_distance(coded)
    efficiencies = {m: d_efficiency(coded, m) for m in ("linear", "interactions", "quadratic")}
    letters: dict[str, str] = {}
    resolution: int | None = None
    generators: list[str] = []
    defining_relation: list[str] = []
    aliases: list[str] = []
    notes: list[str] = []
    if two_level:
        cube = np.round(coded[np.all(np.isclose(np.abs(coded), 1.0), axis=1)])
        names_as_letters = factor_letters(len(names))
        letters = dict(zip(names, names_as_letters, strict=True))
        if structure is None or not structure.matches(cube):
            structure = two_level_structure(cube)
        if structure is not None:
            resolution = structure.resolution()
            generators = structure.generator_strings(names_as_letters)
            defining_relation = structure.defining_relation(names_as_letters)
            aliases = structure.alias_chains(names_as_letters)
            words = 2 ** len(structure.generators) - 1
            if structure.generators and len(defining_relation) < words:
                shown = f"the {len(defining_relation)} shortest" if defining_relation else "none"
                notes.append(f"defining relation has {words} words; {shown} listed")
        elif cube.size:
            # A non-regular design (Plackett–Burman of 12, 20, 24… runs): effects are mostly
            # partially aliased; complete aliases are found by search.
            resolution = 3
            aliases = _complete_aliases(cube, names_as_letters)
            notes.append(_partial_aliasing(cube))
        if len(names) > _MAX_ALIAS_FACTORS and resolution is not None:
            notes.append(f"alias chains are not listed for more than {_MAX_ALIAS_FACTORS} factors")
    return DesignQuality(
        d_efficiency=efficiencies["linear"],
        model_d_efficiency={m: v for m, v in efficiencies.items() if v > 0.0},
        min_pairwise_distance=distance,
        max_abs_correlation=max_abs_correlation(coded),
        replicated_runs=replicated,
        resolution=resolution,
        generators=generators,
        defining_relation=defining_relation,
        aliases=aliases,
        letters=letters,
        notes=notes,
    )


def _complete_aliases(cube: FloatMatrix, letters: Sequence[str]) -> list[str]:
    """Alias chains of a non-regular two-level design by search: every main effect and
    two-factor interaction with the terms of order <= 3 whose columns equal it up to sign."""
    n, k = cube.shape
    if k > _MAX_ALIAS_FACTORS:
        return []
    combos = [c for order in (1, 2, 3) for c in itertools.combinations(range(k), order)]
    columns = np.column_stack([np.prod(cube[:, list(c)], axis=1) for c in combos])
    effects = [i for i, c in enumerate(combos) if len(c) <= 2]
    products = np.rint(columns[:, effects].T @ columns).astype(np.int64)
    chains: list[str] = []
    seen: set[frozenset[int]] = set()
    for row, effect in enumerate(effects):
        aliased = [int(t) for t in np.flatnonzero(np.abs(products[row]) == n) if t != effect]
        key = frozenset([effect, *aliased])
        if not aliased or key in seen:
            continue
        seen.add(key)
        chains.append(
            " = ".join(
                [_word(sum(1 << j for j in combos[effect]), letters)]
                + [
                    ("-" if products[row, t] < 0 else "") + _word(sum(1 << j for j in combos[t]), letters)
                    for t in aliased
                ]
            )
        )
    return chains


def _partial_aliasing(cube: FloatMatrix) -> str:
    """Summarise the partial aliasing of a non-regular two-level design (e.g. a 12-run PB)."""
    n, k = cube.shape
    worst = 0.0
    for i in range(k):
        others = [j for j in range(k) if j != i]
        for a, b in itertools.combinations(others, 2):
            r = abs(float(np.mean(cube[:, i] * cube[:, a] * cube[:, b])))
            if r < 1.0 - 1e-9:
                worst = max(worst, r)
    return (
        "partial aliasing: main effects are correlated with two-factor interactions that do not "
        f"involve them (|r| up to {worst:.3g}); resolution III by convention"
    )
