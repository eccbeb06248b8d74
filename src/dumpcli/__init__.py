"""dump: GRPO + LoRA post-training over a mixture of distributions, with a pluggable curriculum.

    dump schedulers                      # what can pick the next batch's distributions
    dump prepare kk --people 3-8 --out data/kk
    dump train --scheduler ucb           # the embedded CPU demo
    dump inspect runs/latest
"""

__version__ = "0.1.0"
