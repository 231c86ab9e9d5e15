"""Who is calling: signed bearer tokens and the secret that signs them."""
