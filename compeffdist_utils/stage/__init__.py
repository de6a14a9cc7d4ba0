"""The stage contract a notebook follows (``Stage.open`` ... ``stage.finish``) and the fingerprints that
decide when a stage's result can be reused.
"""

from compeffdist_utils.stage.fingerprints import StageInfo, discover_stages, stage_fingerprints
from compeffdist_utils.stage.stage import Stage, find_project_root

__all__ = [
    "Stage",
    "StageInfo",
    "discover_stages",
    "find_project_root",
    "stage_fingerprints",
]
