"""The embedded sentiment-specialist teacher (``embedded:smollm2-135m-sentiment``): its training records
from the packaged corpora (:mod:`.data`), their SentiBench overlap check (:mod:`.overlap`) and the build
(:mod:`.build`, ``compeffdist build-teacher``). The spec itself is resolved by ``models.specialist``.
"""

from compeffdist_utils.specialist.build import build_specialist, load_pool
from compeffdist_utils.specialist.data import build_records
from compeffdist_utils.specialist.overlap import normalise, overlap_report

__all__ = ["build_records", "build_specialist", "load_pool", "normalise", "overlap_report"]
