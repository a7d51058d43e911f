#!/usr/bin/env python3
"""Generate examples/data/corpus.txt: original pseudo-text for the wordfreq example.

Invented words built from syllables, drawn with a Zipf-like law from a fixed
seed (so the file is reproducible and the top of the frequency list is stable),
arranged in sentences and paragraphs.  Usage: gen_corpus.py [out] [bytes]
"""
import random
import sys

SEED = 4404  # 4.4BSD
ONSETS = ["", "b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
          "br", "cr", "dr", "st", "tr", "pl", "sk", "th", "sh", "ch"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io"]
CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "x", "nd", "rk", "st"]


def make_lexicon(rng, size):
    words, seen = [], set()
    while len(words) < size:
        syl = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
        w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syl))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "corpus.txt"
    target = int(sys.argv[2]) if len(sys.argv) > 2 else 400_000
    rng = random.Random(SEED)
    # Frequent words tend to be short (as in natural language), with some spread.
    lexicon = [w for _, w in sorted((len(w) + rng.random() * 6, w) for w in make_lexicon(rng, 12_000))]
    weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(lexicon))]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    words = rng.choices(lexicon, cum_weights=cum, k=target // 4)
    parts, size, i, line = [], 0, 0, []
    while size < target and i < len(words):
        n = rng.randint(5, 18)
        sent = words[i:i + n]
        i += n
        if not sent:
            break
        sent[0] = sent[0].capitalize()
        s = " ".join(sent) + rng.choice([".", ".", ".", "?", "!", ";"])
        line.append(s)
        if sum(len(x) + 1 for x in line) > 72 or rng.random() < 0.1:
            text = " ".join(line) + "\n"
            if rng.random() < 0.12:
                text += "\n"
            parts.append(text)
            size += len(text)
            line = []
    with open(out, "w") as f:
        f.write("".join(parts))


if __name__ == "__main__":
    main()
