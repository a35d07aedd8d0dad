"""Machine-learning core of the recommender: data preparation, the VAE, NumPy inference,
baselines and offline evaluation.

Django-free. Only ``vae`` imports TensorFlow/Keras, so web processes can serve
recommendations with ``inference`` (NumPy only).
"""
