"""Machine-learning core of the recommender: data preparation, the VAE, NumPy inference,
baselines and offline evaluation.

Django-free. Only ``vae`` imports TensorFlow/Keras, so web processes can serve
recommendations with ``inference`` (NumPy only).
"""

import os

# TensorFlow's C++ start-up notes (oneDNN, CPU instructions, absl) fill logs and terminals when ``vae`` loads it;
# errors still show. Set here, before any import of TensorFlow; an explicit setting in the environment wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
