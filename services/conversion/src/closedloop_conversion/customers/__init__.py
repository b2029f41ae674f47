"""Identity's customer events applied to every conversion table holding a customer id."""
