"""The toy recipe the core tests validate (uses the plugin in t2i_toy_plugin.py)."""

TOY_RECIPE = """
name: toy
data:
  dataset:
    type: toy_data
    params:
      size: 4
generator:
  type: toy_gen
  params:
    width: 8
    stages:
      - type: toy_stage
      - type: toy_stage
        params:
          channels: 16
          fusion:
            type: toy_fusion
            params:
              heads: 2
text_encoder:
  type: toy_text
discriminators:
  - type: toy_disc
  - type: toy_disc
losses:
  - type: toy_loss
    weight: 2.0
    stages: [1]
train:
  max_steps: 10
"""
