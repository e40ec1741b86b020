"""Fashion-MNIST MLP study: data, a from-scratch numpy MLP, a Keras search and a loss landscape."""
