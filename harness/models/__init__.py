"""Model families and shapes: one record per family (`families.FAMILIES`), the width dial -> a shape,
exact parameter counts and matmul weights in closed form. Pure: building a module (torch,
transformers) is in `harness.models.build`, imported only where a model is trained."""

from harness.models.families import FAMILIES, Family, family, matmul_params, param_counts, shape_for_width
from harness.models.shape import ModelShape, ParamCounts

__all__ = [
    "FAMILIES", "Family", "ModelShape", "ParamCounts", "family", "matmul_params", "param_counts",
    "shape_for_width",
]  # fmt: skip
