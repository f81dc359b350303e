"""NVC-1B model: the intra coder and the six P-frame coding parts."""

from .codec import ReferenceState, StepOutput, VideoCodec, pad_frame, padded_size
from .counting import ParameterCount, count_parameters

__all__ = [
    "VideoCodec", "ReferenceState", "StepOutput", "pad_frame", "padded_size", "ParameterCount", "count_parameters",
]
