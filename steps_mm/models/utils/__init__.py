from .embed import (PatchEmbed, resize_pos_embed,
                    resize_relative_position_bias_table, resize_square_pos_embed)

__all__ = ['PatchEmbed', 'resize_pos_embed', 'resize_relative_position_bias_table',
           'resize_square_pos_embed']
