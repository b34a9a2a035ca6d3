"""What lobfast is compared with, written here as plain Python: Binance readers, order books, a
recorder and a sparse time index."""
