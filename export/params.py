"""Parameters of the built-in ``onnx`` exporter (a recipe's ``export:`` slot or CLI flags)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from t2i_stages.spec import Params


class OnnxExportParams(Params):
    """ONNX export of a run's EMA generator and text encoder, checked against PyTorch.

    The deployment folder holds the graphs, ``vocab.json``, ``model.json`` (interface, value
    ranges, recipe hash, package versions, parity results) and a standalone runtime script.
    Parity runs ONNX Runtime (CPU) against PyTorch on every batch size x caption length pair;
    fp32 must hold ``rtol``/``atol`` or the export fails. ``fp16`` adds half-precision
    generator graphs (the text encoder stays fp32) checked with ``fp16_atol``.
    """

    opset: int | None = Field(
        None,
        ge=14,
        le=23,
        description="ONNX opset; null = the exporter's default (dynamo: 18+, torchscript: 17).",
    )
    exporter: Literal["dynamo", "torchscript"] = Field(
        "dynamo",
        description="torch.onnx path: dynamo (torch.export, the default) or torchscript "
        "(legacy tracer, opset <= 17, faster to export).",
    )
    fused: bool = Field(
        False,
        description="One graph (token ids -> images) instead of a text encoder and a generator.",
    )
    fp16: bool = Field(
        False, description="Also write fp16 generator graphs (fp32 inputs and outputs)."
    )
    optimize: bool = Field(
        True,
        description="Rewrite nearest-x2-upsample + 3x3-conv pairs as one ConvTranspose (exact "
        "up to float rounding; about 10% faster on the CPU); checked by the parity test.",
    )
    parity: bool = Field(True, description="Check ONNX Runtime against PyTorch at export.")
    parity_batches: list[int] = Field(
        default_factory=lambda: [1, 3], description="Batch sizes of the parity check."
    )
    parity_lengths: list[int] = Field(
        default_factory=list,
        description="Caption lengths T of the parity check; empty = [max_words, max_words // 2].",
    )
    rtol: float = Field(1e-3, ge=0, description="fp32 parity: relative tolerance.")
    atol: float = Field(1e-5, ge=0, description="fp32 parity: absolute tolerance.")
    fp16_rtol: float = Field(1e-3, ge=0, description="fp16 parity: relative tolerance.")
    fp16_atol: float = Field(1e-2, ge=0, description="fp16 parity: absolute tolerance.")
    copy_runtime: bool = Field(
        True, description="Copy the torch-free runtime script into the deployment folder."
    )
    attention: bool = Field(
        False,
        description="Also output each refinement stage's word-attention map (attention_s, "
        "(B, T, h, w)) from the generator graphs, parity-checked; model.json lists them. "
        "A generator without word attention (DF-GAN) is an error.",
    )
    triton: bool = Field(
        False,
        description="Also write a Triton model repository (triton/<name>/config.pbtxt and "
        "1/model.onnx, the fused graph, onnxruntime backend, dynamic batching).",
    )
    triton_model_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Triton model name; null = the recipe's name.",
    )
    triton_precision: Literal["fp32", "fp16"] = Field(
        "fp32", description="Which graphs go into the Triton repository (fp16 needs fp16)."
    )
    triton_max_batch_size: int = Field(
        8, ge=1, description="Triton max_batch_size (the largest batch the batcher forms)."
    )
    triton_max_queue_delay_us: int = Field(
        100, ge=0, description="Triton dynamic_batching max_queue_delay_microseconds."
    )

    @field_validator("parity_batches", "parity_lengths")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("batch sizes and caption lengths must be at least 1")
        return value

    @model_validator(mode="after")
    def _triton_graphs_exist(self) -> OnnxExportParams:
        if self.triton and self.triton_precision == "fp16" and not self.fp16:
            raise ValueError("triton_precision fp16 needs the fp16 graphs (fp16: true, --fp16)")
        return self

    @model_validator(mode="after")
    def _opset_fits_exporter(self) -> OnnxExportParams:
        if self.opset is not None:
            if self.exporter == "torchscript" and self.opset > 17:
                raise ValueError("the torchscript exporter writes opset 17 at most")
            if self.exporter == "dynamo" and self.opset < 18:
                raise ValueError("the dynamo exporter writes opset 18 or newer")
        return self
