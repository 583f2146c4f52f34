"""Where a run runs: the backend and its seeds (``backend.Runtime``), tf.distribute strategies
(``strategy``, and ``distributed``: Keras's steps made to work under them), keras.distribution
meshes and layouts on JAX (``sharding``), mixed precision, and the one module through which
TensorFlow's private API is used (``private_tensorflow``)."""
